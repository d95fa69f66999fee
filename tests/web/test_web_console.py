"""The operator's console and the admin pages in a real browser against the whole stack, and the other ways
to sign in: the review queue sorted as the API sorts it, an item flagged, an override whose first draft
fails the guardrail check (tone and an invented figure) and whose second passes, saved with a reason, and
the user then seeing the overridden text; one user's detail page with signals, persona history, decisions
and the decision traces with the chain-verification badge and one trace replayed; sign-in with a phone
code read from the AWS emulator's SMS log, and with Google through a local OAuth provider (the button
appears because the API says Google is configured, and only Google's); an admin adding a persona
rule-set version made from the active one and comparing the two; a failed event put into a dead-letter
queue through the AWS emulator, shown with its error, and re-driven."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import boto3
import httpx
import pytest
from playwright.sync_api import Page, expect

from spendsense_shared.testing.fakes import load_beside

web = load_beside(__file__, "web_support.py", "spendsense_web_support")

pytestmark = pytest.mark.timeout(600)  # a test run alone also waits for the whole stack to start

QUEUE_WAIT_MS = web.PIPELINE_WAIT_MS


@pytest.fixture(scope="module")
def analyzed_user(web_stack: Any, helpers: Any) -> dict[str, Any]:
    """One user, consented and uploaded through the API, with their items in the review queue."""
    support = helpers.support_module
    email, user_id = web.api_user(web_stack, support, upload=web.upload_body(3))
    items = web.queued_items(web_stack, support, user_id)
    return {"email": email, "user_id": user_id, "items": items}


@pytest.fixture(scope="module")
def admin(web_stack: Any, helpers: Any) -> tuple[str, str]:
    """An administrator of this module's own (email, password): the bootstrap admin's sign-ins are
    rate-limited per account, and the other tests sign it in too."""
    email, _ = web.staff_account(web_stack, helpers.support_module, "admin")
    return email, web.PASSWORD


def admin_page(pages: Any, admin: tuple[str, str], path: str, **options: Any) -> Page:
    page: Page = pages.open(**options)
    web.sign_in_at(page, path, *admin)
    return page


def shown_ids(page: Page) -> list[str]:
    return [
        str(i) for i in page.get_by_test_id("review-item").evaluate_all("els => els.map(e => e.dataset.id)")
    ]


def citable(item: dict[str, Any]) -> str | None:
    """A figure the item may cite, as it is displayed (a sum, a share, months or days)."""
    for fact in item["facts"]:
        if fact["unit"] in ("usd", "percent", "months", "days") and not fact.get("untrusted"):
            return str(fact["display"])
    return None


def test_the_review_queue_sorts_flags_and_overrides_then_the_user_sees_the_override(
    pages: Any, web_stack: Any, helpers: Any, admin: tuple[str, str], analyzed_user: dict[str, Any]
) -> None:
    support = helpers.support_module
    user_id = analyzed_user["user_id"]
    operator = admin_page(pages, admin, "/operator/review")
    operator.get_by_label("User id").fill(user_id)
    operator.get_by_role("button", name="Apply").click()
    operator.get_by_label("Status", exact=True).select_option("all")
    items = operator.get_by_test_id("review-item")
    expect(items).to_have_count(len(analyzed_user["items"]))

    # Each sort shows the items in the order the API sorts them.
    with web_stack.client(web.admin_token(web_stack, support)) as api:
        for sort in ("priority", "user", "date"):
            operator.get_by_label("Sort by").select_option(sort)
            if sort != "date":
                expect(operator).to_have_url(re.compile(f"sort={sort}"))
            operator.wait_for_load_state("networkidle")
            listed = api.get(
                "/api/v1/operator/review", params={"user_id": user_id, "sort": sort, "limit": 100}
            )
            expected = [i["recommendation_id"] for i in listed.json()["items"]]
            helpers.eventually(lambda e=expected: shown_ids(operator) == e, 10, f"sorted by {sort}", 0.2)
    pages.shot(operator, "review-sorted")

    # The override goes to an item with a figure to cite; the flag to another one.
    by_id = {i["recommendation_id"]: i for i in analyzed_user["items"]}
    target = next((i for i in analyzed_user["items"] if citable(i)), analyzed_user["items"][0])
    others = [i for i in analyzed_user["items"] if i is not target]
    flagged = others[0]

    # Flag one item for a second review, with a reason.
    operator.locator(
        f"[data-testid=review-item][data-id='{flagged['recommendation_id']}'] input[type=checkbox]"
    ).check()
    operator.get_by_role("button", name="Flag selected…").click()
    operator.get_by_label(re.compile("^Reason")).fill("A second look at the offer terms (browser test)")
    operator.get_by_role("button", name="Confirm flag").click()
    expect(operator.get_by_text("Flagged 1 item.")).to_be_visible()
    flagged_row = operator.locator(f"[data-testid=review-item][data-id='{flagged['recommendation_id']}']")
    expect(flagged_row.locator(".badges")).to_contain_text("Flagged")
    expect(operator.get_by_test_id("count-flagged")).to_have_text(re.compile(r"^[1-9]\d*$"))

    # The override editor: the item's figures, a first draft that fails, then one that passes.
    row = operator.locator(f"[data-testid=review-item][data-id='{target['recommendation_id']}']")
    row.get_by_role("button", name=re.compile("^Override…")).click()
    editor = row.get_by_test_id("override-editor")
    expect(editor.get_by_role("heading", name=re.compile("^Override"))).to_be_focused()
    figures = editor.get_by_role("list", name="Figures this item may cite")
    for fact in target["facts"]:
        expect(figures).to_contain_text(fact["display"])
    save = editor.get_by_role("button", name="Save override")
    expect(save).to_be_disabled()

    editor.get_by_label("Title", exact=True).fill("Stop the waste")
    editor.get_by_label(re.compile("^Rationale")).fill(
        "You're overspending: about $12,345 a month goes nowhere, so stop wasting it on things you never use."
    )
    editor.get_by_role("button", name="Check", exact=True).click()
    report = editor.get_by_test_id("guardrail-report")
    expect(report).to_contain_text("The text fails the guardrails")
    expect(report.locator("[data-check=tone]")).to_have_attribute("data-passed", "false")
    expect(report.locator("[data-check=grounding]")).to_have_attribute("data-passed", "false")
    expect(report).to_contain_text("“$12,345” matches none of this item's figures")
    expect(report).to_contain_text(re.compile("overspending", re.IGNORECASE))
    expect(report.locator("[data-check=length]")).to_contain_text("allowed 40 to 600")
    editor.get_by_label(re.compile("^Reason for the override")).fill("Clearer wording (browser test)")
    expect(save).to_be_disabled()  # a failed check: nothing to save
    pages.shot(operator, "override-failed-check")

    figure = citable(target)
    title = "A plan that fits your month"
    rationale = (
        f"Based on your accounts, about {figure} is the figure to watch here. Small automatic steps help it grow."
        if figure
        else "Based on your recent accounts, small automatic steps can help this part of your budget."
    )
    editor.get_by_label("Title", exact=True).fill(title)
    editor.get_by_label(re.compile("^Rationale")).fill(rationale)
    expect(editor).to_contain_text("Not checked yet.")
    editor.get_by_role("button", name="Check", exact=True).click()
    expect(report).to_contain_text("Every guardrail check passed.")
    for check in ("tone", "grounding", "disclosure", "length"):
        expect(report.locator(f"[data-check={check}]")).to_have_attribute("data-passed", "true")
    if figure:
        expect(report.locator("[data-check=grounding]")).to_contain_text(f"“{figure}” matches")
    pages.shot(operator, "override-passed-check")
    save.click()
    expect(operator.get_by_text(f"Override saved: the user now sees “{title}”.")).to_be_visible()
    expect(row).to_have_attribute("data-status", "overridden")
    expect(row.get_by_test_id("override-shown")).to_contain_text(title)
    assert by_id[target["recommendation_id"]]["title"] in row.inner_text()  # the original stays readable

    # The user sees the overridden text, with its rationale.
    user = pages.open()
    web.sign_in_at(user, "/me/recommendations", analyzed_user["email"], web.PASSWORD)
    card = user.get_by_test_id("recommendation").filter(has=user.get_by_role("heading", name=title))

    def shown() -> bool:  # recommendation.reviewed reaches the recommender asynchronously
        user.get_by_role("button", name="Refresh").click()
        user.wait_for_load_state("networkidle")
        return card.count() == 1

    helpers.eventually(shown, QUEUE_WAIT_MS / 1000, "the overridden card", 1)
    expect(card.get_by_test_id("rationale")).to_have_text(rationale)
    expect(card).to_contain_text("This is educational content, not financial advice.")
    pages.shot(user, "recommendations-overridden")

    assert pages.console_errors() == []
    assert pages.inaccessible == []


def test_user_detail_shows_signals_history_decisions_and_verified_traces(
    pages: Any, web_stack: Any, helpers: Any, admin: tuple[str, str], analyzed_user: dict[str, Any]
) -> None:
    user_id = analyzed_user["user_id"]
    operator = admin_page(pages, admin, "/operator/review")
    operator.goto(f"/operator/review?status=all&user_id={user_id}")
    operator.get_by_test_id("review-item").first.get_by_role("link", name=re.compile("^User detail")).click()
    operator.wait_for_url(f"**/operator/users/{user_id}")
    expect(operator.get_by_role("heading", name="User detail")).to_be_visible()

    for window in ("30d", "180d"):
        expect(operator.get_by_test_id(f"user-persona-{window}")).not_to_contain_text("Not assigned yet")
    expect(operator.get_by_role("img", name=re.compile("^Card utilization"))).to_be_visible()
    operator.get_by_label("Last 180 days").check()
    expect(operator.get_by_role("img", name=re.compile("^Money in and out"))).to_be_visible()
    history = operator.get_by_role("region", name="Persona assignments")
    expect(history.locator("tbody tr").first).to_be_visible()
    recommendations = operator.get_by_test_id("user-recommendations")
    expect(recommendations.locator("tbody tr")).to_have_count(len(analyzed_user["items"]))

    # Every trace of the user, the chain verified; one trace opened: the chain and the replay.
    badge = operator.get_by_test_id("chain-badge").first
    expect(badge).to_have_attribute("data-state", "verified")
    expect(badge).to_contain_text("Chain verified")
    expect(badge).to_contain_text(re.compile(r"\d+ traces? checked"))
    traces = operator.get_by_test_id("trace")
    expect(traces.first).to_be_visible()
    assert traces.count() == len(analyzed_user["items"])
    first_id = traces.first.get_attribute("data-id")
    traces.first.get_by_role("button", name=re.compile("^View trace")).click()
    detail = operator.get_by_test_id("trace-detail")
    expect(detail.get_by_test_id("chain-badge")).to_have_attribute("data-state", "verified")
    expect(detail.get_by_test_id("replay-badge")).to_have_attribute("data-state", "matches")
    trace_json = json.loads(detail.locator("pre.json").inner_text())
    assert trace_json["recommendation_id"] == first_id
    assert {"chain", "persona", "selection", "guardrails"} <= set(trace_json)
    expect(operator).to_have_url(re.compile(f"trace={first_id}"))
    pages.shot(operator, "user-detail")

    # Refusals in words: a user id without current consent, a consented user SpendSense knows nothing of.
    operator.goto(f"/operator/users/nobody-{uuid.uuid4().hex[:8]}")
    expect(operator.get_by_role("alert")).to_contain_text("has not given current consent")
    expect(operator.get_by_role("alert")).to_contain_text("Error code: consent_required")

    assert pages.console_errors() == []
    assert pages.inaccessible == []


def test_a_phone_code_signs_in_end_to_end(pages: Any, web_stack: Any, helpers: Any) -> None:
    support = helpers.support_module
    phone_number = support.a_number()
    page = pages.open()
    page.goto("/signin")
    page.get_by_label("Phone number").fill(phone_number)
    page.get_by_role("button", name="Send code").click()
    expect(page.get_by_text(f"A 6-digit code was sent to {phone_number}")).to_be_visible()
    expect(page.get_by_label("Code from the SMS")).to_be_focused()
    code = support.wait_for(
        lambda: (
            support.last_code(web_stack.aws, phone_number)
            if support.sent_sms(web_stack.aws, phone_number)
            else None
        ),
        30,
        "the SMS in the AWS emulator",
    )

    # A wrong code is refused in words; the right one signs in (a new number: a new account).
    wrong = "000000" if code != "000000" else "111111"
    page.get_by_label("Code from the SMS").fill(wrong)
    page.get_by_role("button", name="Verify code").click()
    refused = page.get_by_role("alert")
    expect(refused).to_contain_text("The code was not accepted")
    expect(refused).to_contain_text("Error code:")
    pages.shot(page, "phone-code")
    page.get_by_label("Code from the SMS").fill(code)
    page.get_by_role("button", name="Verify code").click()
    page.wait_for_url("**/me")
    expect(page.get_by_role("heading", name="Your overview")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    assert pages.console_errors() == []
    assert pages.inaccessible == []


def google_configured(gateway: str) -> bool:
    probe = httpx.post(
        f"{gateway}/api/v1/auth/oauth/google/token",
        json={"code": "configured?", "state": "configured?"},
        timeout=10,
    )
    return probe.status_code == 400


def test_the_configured_oauth_provider_has_a_button_that_signs_in(pages: Any, web_stack: Any) -> None:
    if not google_configured(web_stack.gateway):
        pytest.skip(
            "this stack has no OAuth provider configured (the test's own stack points Google at a local one)"
        )
    page = pages.open()
    page.goto("/signin")
    google = page.get_by_role("button", name="Continue with Google")
    expect(google).to_be_visible()
    for unconfigured in ("GitHub", "Facebook", "Apple"):
        expect(page.get_by_role("button", name=f"Continue with {unconfigured}")).to_have_count(0)
    pages.shot(page, "signin-with-providers")

    # The browser goes to the provider (which approves at once), to the API's callback, then back to the
    # app with a one-time login code that the app trades for the tokens.
    google.click()
    page.wait_for_url("**/me")
    expect(page.get_by_role("heading", name="Your overview")).to_be_visible()

    # A used or made-up login code, and a provider that refused: said in words.
    other = pages.open()
    other.goto("/signin/oauth/google?login_code=made-up-code")
    alert = other.get_by_role("alert")
    expect(alert).to_contain_text("Could not sign in with Google")
    expect(alert).to_contain_text("Error code: invalid_login_code")
    other.goto("/signin/oauth/google?error=oauth_failed&reason=access_denied")
    expect(other.get_by_role("alert")).to_contain_text("Google did not sign you in (access_denied)")
    expect(other.get_by_role("link", name="Back to sign-in")).to_be_visible()

    assert pages.console_errors() == []
    assert pages.inaccessible == []


def test_an_admin_adds_a_rule_set_version_and_compares_it_with_the_active_one(
    pages: Any, web_stack: Any, helpers: Any, admin: tuple[str, str]
) -> None:
    support = helpers.support_module
    console = admin_page(pages, admin, "/operator/review")
    web.nav(console, "Rule sets")
    expect(console.get_by_role("heading", name="Persona rule sets")).to_be_visible()
    versions = console.get_by_test_id("rule-sets")
    active_row = versions.locator("tbody tr").filter(has=console.locator(".badge-ok"))
    expect(active_row).to_have_count(1)
    active = active_row.get_attribute("data-version")
    assert active

    # A document that is not a rule set is refused in words.
    console.get_by_label("Rule-set document (YAML or JSON)").fill("version: broken\npersonas: 12\n")
    console.get_by_role("button", name="Add version").click()
    refused = console.get_by_role("alert")
    expect(refused).to_contain_text("The version was not added")
    expect(refused).to_contain_text("Error code: invalid_rule_set")

    # A new version from the active one's content: another name, one threshold changed.
    console.get_by_role("button", name=re.compile("^Start from the active version")).click()
    document = console.get_by_label("Rule-set document (YAML or JSON)")
    expect(document).not_to_have_value("version: broken\npersonas: 12\n")
    content = document.input_value()
    new_version = f"personas-web-{uuid.uuid4().hex[:8]}"
    changed = re.sub(r"(?m)^version: .*$", f"version: {new_version}", content, count=1)
    if changed == content:  # a JSON document (an added version's content)
        parsed = json.loads(content)
        parsed["version"] = new_version
        changed = json.dumps(parsed, indent=2)
    changed = changed.replace('op: ">", value: 45}', 'op: ">", value: 40}', 1)
    document.fill(changed)
    console.get_by_role("button", name="Add version").click()
    expect(console.get_by_text(f"Added version {new_version}.")).to_be_visible()
    expect(versions.locator(f"tr[data-version='{new_version}']")).to_contain_text("Inactive")

    # The diff (from the active version to the new one) shows what changed, line by line.
    expect(console).to_have_url(re.compile(f"from={active}&to={new_version}"))
    summary = console.get_by_test_id("diff-summary")
    expect(summary).to_contain_text(f"From {active} to {new_version}")
    diff = console.get_by_test_id("diff")
    expect(diff.locator("tr[data-op=added]").filter(has_text=new_version)).to_have_count(1)
    expect(diff.locator("tr[data-op=removed]").filter(has_text=f'"{active}"')).to_have_count(1)
    if "value: 40}" in changed:
        expect(diff.locator("tr[data-op=added]").filter(has_text='"value": 40')).to_have_count(1)
    pages.shot(console, "rule-set-diff")

    # One version's content; activation asks first (not confirmed here: it re-scores every user).
    versions.locator(f"tr[data-version='{new_version}']").get_by_role(
        "button", name=re.compile("^View")
    ).click()
    expect(console.get_by_test_id("ruleset-view")).to_contain_text(new_version)
    versions.locator(f"tr[data-version='{new_version}']").get_by_role(
        "button", name=re.compile("^Activate")
    ).click()
    expect(console.get_by_role("heading", name=f"Activate {new_version}?")).to_be_focused()
    expect(console.get_by_role("button", name=f"Yes, activate {new_version}")).to_be_visible()
    pages.shot(console, "rule-set-activate")
    console.get_by_role("button", name="Cancel").click()
    with web_stack.client(web.admin_token(web_stack, support)) as api:
        listed = {i["version"]: i["active"] for i in api.get("/api/v1/personas/rules").json()["items"]}
    assert listed[new_version] is False
    assert listed[active] is True

    assert pages.console_errors() == []
    assert pages.inaccessible == []


def test_dead_letters_are_listed_with_their_error_and_re_driven(
    pages: Any, web_stack: Any, helpers: Any, admin: tuple[str, str]
) -> None:
    support = helpers.support_module
    with web_stack.client(web.admin_token(web_stack, support)) as api:
        queues = {q["service"]: q for q in api.get("/api/v1/admin/dead-letters").json()["queues"]}
    features = queues["features"]

    # An event the features service failed on, as its consumer dead-letters one (body and error attributes).
    sqs = boto3.client(
        "sqs",
        endpoint_url=web_stack.aws,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    event_id = str(uuid.uuid4())
    body = {
        "id": event_id,
        "type": "web_test.never_handled",
        "version": 1,
        "producer": "web-test",
        "data": {},
    }
    attributes = {
        "type": "web_test.never_handled",
        "error_type": "UnknownEventType",
        "error_message": "web_test.never_handled is not an event type of the catalog",
        "receive_count": "1",
    }
    sqs.send_message(
        QueueUrl=sqs.get_queue_url(QueueName=features["dlq"])["QueueUrl"],
        MessageBody=json.dumps(body),
        MessageAttributes={
            k: {"DataType": "Number" if k == "receive_count" else "String", "StringValue": v}
            for k, v in attributes.items()
        },
    )

    console = admin_page(pages, admin, "/operator/review")
    web.nav(console, "Dead letters")
    expect(console.get_by_role("heading", name="Dead-letter queues")).to_be_visible()
    expect(console.get_by_test_id("dlq")).to_have_count(len(queues))
    card = console.locator("[data-testid=dlq][data-service=features]")
    row = card.locator(f"tr[data-event-id='{event_id}']")
    expect(row).to_contain_text("web_test.never_handled")
    expect(row).to_contain_text(
        "UnknownEventType: web_test.never_handled is not an event type of the catalog"
    )
    expect(card.get_by_test_id("dlq-depth")).to_contain_text(re.compile(r"\d+ messages?"))
    pages.shot(console, "dead-letters")

    # Re-driven to the features queue: its consumer takes it again (and, as it still cannot handle it,
    # dead-letters it again with the error it met).
    card.get_by_role("button", name=re.compile("^Re-drive")).click()
    expect(card.get_by_label(re.compile("^Move at most"))).to_be_focused()
    card.get_by_role("button", name="Confirm re-drive").click()
    expect(
        console.get_by_text(
            re.compile(rf"^Moved [1-9]\d* messages? back to {re.escape(features['queue'])}\.")
        )
    ).to_be_visible()

    def back_with_its_error() -> bool:
        console.get_by_role("button", name="Refresh").click()
        console.wait_for_load_state("networkidle")
        return row.count() == 1 and "not an event type of the catalog" not in row.inner_text()

    helpers.eventually(back_with_its_error, 60, "the re-driven event, dead-lettered again by the consumer", 1)
    expect(row).to_contain_text("web_test.never_handled")
    pages.shot(console, "dead-letters-redriven")

    assert pages.console_errors() == []
    assert pages.inaccessible == []


def test_admin_pages_are_for_admins_only(pages: Any, web_stack: Any, helpers: Any) -> None:
    support = helpers.support_module
    email, _ = web.staff_account(web_stack, support, "operator")
    operator = pages.open()
    web.sign_in_at(operator, "/operator/review", email, web.PASSWORD)
    main_nav = operator.get_by_role("navigation", name="Main")
    expect(main_nav.get_by_role("link", name="Review queue")).to_be_visible()
    expect(main_nav.get_by_role("link", name="Rule sets")).to_have_count(0)
    expect(main_nav.get_by_role("link", name="Dead letters")).to_have_count(0)
    for path in ("/admin/rules", "/admin/dead-letters"):
        operator.goto(path)
        expect(operator.get_by_role("heading", name="Not allowed")).to_be_visible()
        expect(operator.get_by_role("alert")).to_contain_text("This page is for administrators.")

    assert pages.console_errors() == []
    assert pages.inaccessible == []
