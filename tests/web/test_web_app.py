"""The web app in a real browser against the whole stack: a user signs up, consents, uploads (drag and
drop), watches the stages, sees their persona and signals; an operator (the bootstrap admin) approves
that user's pending items and rejects one through the review queue, finds both in the audit log and its
CSV export; the user then sees exactly the approved items as cards with their rationale. Also: role
guards, errors shown in words, erasure, and a phone-width viewport without horizontal scrolling.

Written to hold whether the stack approves at generation (``SPENDSENSE_AUTO_APPROVE``) or not: the
operator decides whatever is pending for the user, and the user then sees every item not rejected."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from spendsense_shared.testing.fakes import load_beside

web = load_beside(__file__, "web_support.py", "spendsense_web_support")
PASSWORD, PIPELINE_WAIT_MS, PHONE = web.PASSWORD, web.PIPELINE_WAIT_MS, web.PHONE
upload_body, sign_up, sign_in, nav, give_consent = (
    web.upload_body,
    web.sign_up,
    web.sign_in,
    web.nav,
    web.give_consent,
)
drop_file, review_titles, no_horizontal_scroll, api_user = (
    web.drop_file,
    web.review_titles,
    web.no_horizontal_scroll,
    web.api_user,
)

pytestmark = pytest.mark.timeout(600)  # the first test also waits for the whole stack to start

PERSONA_NAMES = (
    "High Utilization",
    "Variable Income Budgeter",
    "Cash-Flow Balancer",
    "Subscription-Heavy",
    "Savings Builder",
    "General Wellness",
)


def test_sign_up_consent_upload_persona_then_operator_review_and_the_user_sees_the_approved_cards(
    pages: Any, web_stack: Any, helpers: Any
) -> None:
    support = helpers.support_module
    user = pages.open()

    # Sign up, then consent with the policy text on screen.
    sign_up(user, support.unique_email("web"))
    expect(user.get_by_role("heading", name=re.compile("Data and consent policy"))).to_be_visible()
    expect(user.get_by_test_id("consent-status")).to_contain_text("No current consent")
    give_consent(user)
    pages.shot(user, "consent")

    # The access token lives in memory only: a reload signs the tab back in with the refresh token.
    nav(user, "Overview")
    user.reload()
    expect(user.get_by_role("heading", name="Your overview")).to_be_visible()
    user_id = user.get_by_test_id("user-id").text_content(timeout=20_000)
    assert user_id

    # Upload by drag and drop; the stage tracker follows it to the end.
    nav(user, "Upload")
    expect(user.get_by_role("heading", name="Upload your data")).to_be_visible()
    drop_file(user, "my-bank-data.json", upload_body(2))
    expect(user.get_by_text("Selected: my-bank-data.json")).to_be_visible()
    user.get_by_role("button", name="Upload", exact=True).click()
    # Counted when accepted, or (an API that parses in its worker) received now and counted once ingested.
    expect(user.get_by_text(re.compile(r"^Upload (accepted: \d+ accounts|received)"))).to_be_visible()
    expect(user.locator("[data-stage=ingested][data-state=done]")).to_be_visible(timeout=PIPELINE_WAIT_MS)
    expect(user.locator("dl.facts")).to_contain_text(re.compile(r"Accounts\s*\d+"))
    expect(user.locator("[data-stage=analyzed][data-state=done]")).to_be_visible(timeout=PIPELINE_WAIT_MS)
    expect(user.locator("[data-stage=recommended][data-state=done]")).to_be_visible(timeout=PIPELINE_WAIT_MS)
    assert "upload=" in user.url  # the tracker survives a reload: the upload id is in the address
    pages.shot(user, "upload")

    # The persona for both windows, and the signals drawn as charts.
    nav(user, "My persona")
    expect(user.get_by_role("heading", name="My persona")).to_be_visible()
    for window in ("30d", "180d"):
        card = user.get_by_test_id(f"persona-{window}")
        expect(card).not_to_contain_text("Not assigned yet")
        assert any(name in card.inner_text() for name in PERSONA_NAMES), card.inner_text()
    expect(user.get_by_role("img", name=re.compile("^Card utilization"))).to_be_visible()
    expect(user.get_by_role("img", name=re.compile("^Income cadence"))).to_be_visible()
    user.get_by_label("Last 180 days").check()
    expect(user.get_by_role("heading", name=re.compile(r"\(last 180 days\)"))).to_be_visible()
    expect(user.get_by_role("heading", name="Subscriptions and recurring payments")).to_be_visible()
    expect(user.get_by_role("img", name=re.compile("^Money in and out"))).to_be_visible()
    pages.shot(user, "persona")

    # An operator, in a browser of their own: the operator console sends them to sign in first.
    operator = pages.open()
    operator.goto("/operator/review")
    operator.wait_for_url("**/signin")
    sign_in(operator, *web_stack.admin_credentials())
    operator.wait_for_url("**/operator/review")
    operator.get_by_label("User id").fill(user_id)
    operator.get_by_role("button", name="Apply").click()
    operator.get_by_label("Status", exact=True).select_option("all")
    items = operator.get_by_test_id("review-item")

    def queued() -> bool:  # recommendations.batch_generated reaches the operator's queue asynchronously
        operator.get_by_role("button", name="Refresh").click()
        operator.wait_for_load_state("networkidle")
        return items.count() > 0

    helpers.eventually(queued, PIPELINE_WAIT_MS / 1000, "the user's items in the review queue", 2)
    all_titles = review_titles(items)
    operator.get_by_label("Status", exact=True).select_option("pending")
    expect(operator.get_by_test_id("count-pending")).to_have_text(re.compile(r"^\d+$"))  # counts loaded
    pending = int(operator.get_by_test_id("count-pending").inner_text())
    rejected_title = None
    if pending:
        expect(items).to_have_count(pending)
        pending_titles = review_titles(items)
        if pending >= 2:  # reject one, with a reason (required), then approve the others in bulk
            items.nth(0).locator("input[type=checkbox]").check()
            operator.get_by_role("button", name="Reject selected…").click()
            confirm = operator.get_by_role("button", name="Confirm rejection")
            expect(confirm).to_be_disabled()
            operator.get_by_label(re.compile("^Reason")).fill("Not relevant for this user (browser test)")
            confirm.click()
            expect(operator.get_by_text("Rejected 1 item.")).to_be_visible()
            rejected_title = pending_titles[0]
            pending -= 1
        operator.get_by_label(re.compile("^Select all")).check()
        operator.get_by_role("button", name=f"Approve selected ({pending})").click()
        expect(operator.get_by_text(f"Approved {pending} item")).to_be_visible()
        expect(operator.get_by_test_id("count-pending")).to_have_text("0")
    pages.shot(operator, "review")

    # Both decisions are in the audit log, and in its CSV export (fetched with the bearer token).
    nav(operator, "Audit log")
    expect(operator.get_by_role("heading", name="Audit log")).to_be_visible()
    operator.get_by_label("User id").fill(user_id)
    operator.get_by_role("button", name="Filter").click()
    if pending or rejected_title:
        expect(operator.locator("table.audit tbody tr").first).to_be_visible()
    expect(operator).to_have_url(re.compile(f"user_id={user_id}"))
    if rejected_title:
        reason = operator.get_by_role("cell", name="Not relevant for this user (browser test)")
        expect(reason).to_have_count(1)
    with operator.expect_download() as download:
        operator.get_by_role("button", name="Download CSV").click()
    csv_text = Path(download.value.path()).read_text()
    assert csv_text.startswith("seq,at,operator_id,action,recommendation_id,user_id")
    if pending:
        assert user_id in csv_text
    pages.shot(operator, "audit")

    # The user sees exactly the items not rejected, each with why, the disclosure and feedback.
    expected = sorted(t for t in all_titles if t != rejected_title)
    nav(user, "Recommendations")
    expect(user.get_by_role("heading", name="Your recommendations")).to_be_visible()
    cards = user.get_by_test_id("recommendation")

    def shown() -> bool:  # recommendation.reviewed reaches the recommender asynchronously
        user.get_by_role("button", name="Refresh").click()
        user.wait_for_load_state("networkidle")
        return sorted(cards.locator("h2").all_inner_texts()) == expected

    helpers.eventually(shown, PIPELINE_WAIT_MS / 1000, f"the approved cards {expected}", 2)
    assert cards.count() == len(expected) > 0
    for n in range(cards.count()):
        card = cards.nth(n)
        expect(card.get_by_role("heading", name="Why you see this")).to_be_visible()
        assert card.get_by_test_id("rationale").inner_text().strip()
        expect(card).to_contain_text("This is educational content, not financial advice.")
    first = cards.first
    first.get_by_role("button", name="Helpful", exact=True).click()
    expect(first.get_by_text("Marked as helpful")).to_be_visible()
    expect(first.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")
    pages.shot(user, "recommendations")

    assert pages.console_errors() == []
    assert pages.inaccessible == []


def test_operator_routes_need_sign_in_and_the_operator_role(pages: Any, web_stack: Any, helpers: Any) -> None:
    support = helpers.support_module
    visitor = pages.open()

    visitor.goto("/operator/audit")
    visitor.wait_for_url("**/signin")
    expect(visitor.get_by_text("Sign in to continue to that page.")).to_be_visible()
    visitor.goto("/me/persona")
    visitor.wait_for_url("**/signin")

    # A wrong password is refused in words (the API's message), and the form stays.
    email, _ = api_user(web_stack, support)
    sign_in(visitor, email, "Wrong-Password-9!")
    expect(visitor.get_by_role("alert")).to_contain_text("Could not sign in")
    expect(visitor.get_by_role("alert")).to_contain_text(re.compile("invalid|incorrect", re.IGNORECASE))

    # A signed-in user (roles claim: user) is not let into the operator console, and has no link to it.
    sign_in(visitor, email, PASSWORD)
    visitor.wait_for_url("**/me/persona")  # back where sign-in was asked for
    expect(visitor.get_by_role("link", name="Review queue")).to_have_count(0)
    visitor.goto("/operator/review")
    expect(visitor.get_by_role("heading", name="Not allowed")).to_be_visible()
    pages.shot(visitor, "not-allowed")

    # Signing out forgets the session: the user pages send to sign-in again.
    visitor.goto("/me")
    visitor.get_by_role("button", name="Sign out").click()
    visitor.wait_for_url("**/signin")
    visitor.goto("/me/consent")
    visitor.wait_for_url("**/signin")

    # A weak password at sign-up: every failed rule, in words.
    sign_up_page = pages.open()
    sign_up_page.goto("/signup")
    sign_up_page.get_by_label("Email").fill(support.unique_email("weak"))
    sign_up_page.get_by_label("Password", exact=True).fill("password")
    sign_up_page.get_by_role("button", name="Create account").click()
    alert = sign_up_page.get_by_role("alert")
    expect(alert).to_contain_text("Could not create the account")
    expect(alert).to_contain_text(re.compile("upper-?case", re.IGNORECASE))
    expect(alert).to_contain_text("Error code: weak_password")

    assert pages.console_errors() == []
    assert pages.inaccessible == []


def test_a_keyboard_alone_signs_in_and_focus_follows_the_pages(
    pages: Any, web_stack: Any, helpers: Any
) -> None:
    email, _ = api_user(web_stack, helpers.support_module)
    page = pages.open()
    page.goto("/signin")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")  # past the header, straight to the form
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email or username")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password", exact=True)).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/me")
    expect(page.get_by_role("heading", name="Your overview")).to_be_focused()  # each new page: its title

    # The main navigation is reachable and usable with the keyboard too.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Consent", exact=True).focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/me/consent")
    expect(page.get_by_role("heading", name="Consent", exact=True)).to_be_focused()
    pages.shot(page, "consent-by-keyboard")

    assert pages.console_errors() == []
    assert pages.inaccessible == []


def test_erase_my_data_asks_for_confirmation_then_signs_out(pages: Any, web_stack: Any, helpers: Any) -> None:
    support = helpers.support_module
    email, user_id = api_user(web_stack, support)
    page = pages.open()
    page.goto("/signin")
    sign_in(page, email, PASSWORD)
    page.wait_for_url("**/me")

    # Uploading before consenting is refused, in words, with the way to consent.
    nav(page, "Upload")
    page.get_by_label("Choose a file to upload").set_input_files(
        files=[{"name": "data.json", "mimeType": "application/json", "buffer": upload_body(5).encode()}]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    refused = page.get_by_role("alert")
    expect(refused).to_contain_text("The upload was not accepted")
    expect(refused).to_contain_text("Error code: consent_required")
    expect(refused.get_by_role("link", name="Review consent")).to_be_visible()

    nav(page, "Consent")
    give_consent(page)

    # A file with mistakes: every problem, with its path, and nothing stored.
    nav(page, "Upload")
    bad = {"accounts": [{"account_id": "a1", "type": "depository"}], "transactions": [{"amount": "x"}]}
    page.get_by_label("Choose a file to upload").set_input_files(
        files=[{"name": "bad.json", "mimeType": "application/json", "buffer": json.dumps(bad).encode()}]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    invalid = page.get_by_role("alert")
    expect(invalid).to_contain_text("Error code: invalid_upload")
    expect(invalid).to_contain_text("transactions[0]")
    pages.shot(page, "upload-invalid")

    nav(page, "Consent")

    page.get_by_role("button", name="Revoke consent").click()
    expect(page.get_by_test_id("consent-status")).to_contain_text("No current consent")
    page.get_by_role("button", name="Erase my data…").click()
    expect(page.get_by_role("heading", name="Are you sure?")).to_be_focused()
    erase = page.get_by_role("button", name="Erase everything")
    expect(erase).to_be_disabled()
    page.get_by_label("Type ERASE to confirm").fill("ERASE")
    erase.click()
    page.wait_for_url("**/signin")
    expect(page.get_by_text("Your data is being erased.")).to_be_visible()
    # The profile service has deleted the user: their consent is gone (404), whoever asks.
    admin_login = support.admin_login(web_stack)
    with web_stack.client(admin_login.json()["access_token"]) as admin:
        assert admin.get(f"/api/v1/consent/{user_id}").status_code == 404

    assert pages.console_errors() == []
    assert pages.inaccessible == []


def test_every_page_fits_a_phone_without_horizontal_scrolling(
    pages: Any, web_stack: Any, helpers: Any
) -> None:
    support = helpers.support_module
    email, user_id = api_user(web_stack, support, upload=upload_body(4))
    phone = pages.open(**PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)

    for path, heading in (("/signin", "Sign in"), ("/signup", "Create your account")):
        phone.goto(path)
        expect(phone.get_by_role("heading", name=heading)).to_be_visible()
        assert no_horizontal_scroll(phone), path
        pages.shot(phone, path.strip("/"))

    phone.goto("/signin")
    sign_in(phone, email, PASSWORD)
    phone.wait_for_url("**/me")
    user_pages = (
        ("Overview", "Your overview", None),
        ("Consent", "Consent", "consent-status"),
        ("Upload", "Upload your data", None),
        ("My persona", "My persona", "persona-180d"),
        ("Recommendations", "Your recommendations", None),
    )
    for link, heading, ready in user_pages:
        nav(phone, link)
        expect(phone.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        if ready:
            expect(phone.get_by_test_id(ready)).to_be_visible()
        phone.wait_for_load_state("networkidle")
        assert no_horizontal_scroll(phone), link
        pages.shot(phone, link.lower().replace(" ", "-"))

    operator = pages.open(**PHONE, is_mobile=True, has_touch=True)
    operator.goto("/operator/review")
    sign_in(operator, *web_stack.admin_credentials())
    operator.wait_for_url("**/operator/review")
    console_pages = (
        ("Review queue", "Review queue"),
        ("Audit log", "Audit log"),
        ("Rule sets", "Persona rule sets"),
        ("Dead letters", "Dead-letter queues"),
    )
    for link, heading in console_pages:
        nav(operator, link)
        expect(operator.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        operator.wait_for_load_state("networkidle")
        assert no_horizontal_scroll(operator), link
        pages.shot(operator, link.lower().replace(" ", "-"))
    web.queued_items(web_stack, support, user_id)
    operator.goto(f"/operator/review?status=all&user_id={user_id}")
    operator.get_by_role("button", name=re.compile("^Override…")).first.click()
    expect(operator.get_by_test_id("override-editor")).to_be_visible()
    assert no_horizontal_scroll(operator), "the override editor"
    pages.shot(operator, "override-editor")

    operator.goto(f"/operator/users/{user_id}")
    expect(operator.get_by_test_id("chain-badge").first).to_be_visible()
    operator.get_by_test_id("trace").first.get_by_role("button", name=re.compile("^View trace")).click()
    expect(operator.get_by_test_id("trace-detail").get_by_test_id("replay-badge")).to_be_visible()
    assert no_horizontal_scroll(operator), "user detail"
    pages.shot(operator, "user-detail")

    assert pages.console_errors() == []
    assert pages.inaccessible == []


def test_the_gateway_serves_the_built_app_with_its_cache_rules(web_stack: Any) -> None:
    index = httpx.get(f"{web_stack.gateway}/", timeout=10)
    deep = httpx.get(f"{web_stack.gateway}/operator/review", timeout=10)
    asset = re.search(r'src="(/assets/[^"]+\.js)"', index.text)

    assert index.status_code == deep.status_code == 200
    assert index.headers["cache-control"] == "no-cache"
    assert deep.text == index.text
    assert asset, index.text
    script = httpx.get(f"{web_stack.gateway}{asset.group(1)}", timeout=10)
    assert script.status_code == 200
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert httpx.get(f"{web_stack.gateway}/api/v1/nowhere", timeout=10).json()["error"]["code"] == "not_found"
