"""What the browser-test modules share (loaded by path with ``load_beside``: under pytest's importlib mode
the test modules cannot import each other): the demo password, readiness waits, and the small steps a
person takes in the app (sign up, sign in, follow a link of the main navigation, consent, drop a file),
and accounts made through the API."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from playwright.sync_api import Page, expect

from spendsense_cli.synthetic import build_user

PASSWORD = "Correct-Horse-9-Battery"
PIPELINE_WAIT_MS = 180_000  # readiness waits for a loaded CI machine, not benchmarks
PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 900}  # a new page's viewport, and the width of the desktop screenshots


def upload_body(index: int) -> str:
    """One synthetic user's accounts, transactions and liabilities, without a user_id: an upload without
    one is the uploader's own data."""
    user, _ = build_user(index, seed=11)
    user.pop("user_id")
    return json.dumps(user)


def sign_up(page: Page, email: str) -> None:
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/me/consent")


def sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email or username").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def nav(page: Page, name: str) -> None:
    """Follow a link of the main navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def give_consent(page: Page) -> None:
    page.get_by_label(re.compile("I have read the policy")).check()
    page.get_by_role("button", name="Give consent").click()
    expect(page.get_by_test_id("consent-status")).to_contain_text("Consent given")


def drop_file(page: Page, name: str, content: str) -> None:
    """A real drop event on the drop zone carrying a File (what dragging a file from the desktop does)."""
    transfer = page.evaluate_handle(
        """([name, content]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([content], name, { type: "application/json" }));
            return transfer;
        }""",
        [name, content],
    )
    page.dispatch_event("[data-testid=dropzone]", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("[data-testid=dropzone]", "drop", {"dataTransfer": transfer})


def review_titles(items: Any) -> list[str]:
    """The titles of the review items shown (each checkbox's label is "Select <title>")."""
    return [re.sub(r"^Select\s+", "", t).strip() for t in items.locator(".review-title").all_inner_texts()]


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"))


def api_user(stack: Any, support: Any, upload: str | None = None) -> tuple[str, str]:
    """An account made through the API (email, user id); with ``upload``, consented and uploaded, and
    analyzed by the time this returns."""
    email = support.unique_email("web")
    signed_up = support.register(stack.gateway, email, PASSWORD)
    user_id = signed_up["user"]["id"]
    if upload is not None:
        with stack.client(signed_up["access_token"]) as client:
            assert client.post("/api/v1/consent", json={"user_id": user_id}).status_code == 201
            accepted = client.post("/api/v1/uploads", files={"file": ("data.json", upload)})
            assert accepted.status_code == 202, accepted.text
            upload_id = accepted.json()["upload_id"]

            def analyzed() -> bool:
                status = client.get(f"/api/v1/uploads/{upload_id}").json()["status"]
                assert status != "failed"
                return status in ("analyzed", "recommended")

            support.wait_for(lambda: True if analyzed() else None, PIPELINE_WAIT_MS / 1000, "analyzed")
    return email, user_id


_ADMIN_TOKENS: dict[str, tuple[str, float]] = {}


def admin_token(stack: Any, support: Any) -> str:
    """An access token of the bootstrap admin, signed in once and kept while it is valid: sign-ins are
    rate-limited per account (10 a minute), and the browser tests sign the admin in too."""
    kept = _ADMIN_TOKENS.get(stack.gateway)
    if kept and kept[1] > time.monotonic():
        return kept[0]
    signed_in = support.admin_login(stack)
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    _ADMIN_TOKENS[stack.gateway] = (body["access_token"], time.monotonic() + body["expires_in"] - 120)
    return str(body["access_token"])


def staff_account(stack: Any, support: Any, role: str) -> tuple[str, str]:
    """A new account (email, user id) with ``role`` (operator or admin) granted by the bootstrap admin: a
    person of its own, whose sign-ins count against its own rate limit."""
    email, user_id = api_user(stack, support)
    with stack.client(admin_token(stack, support)) as admin:
        granted = admin.post(f"/api/v1/users/{user_id}/roles", json={"role": role})
        assert granted.status_code == 200, granted.text
    return email, user_id


def queued_items(stack: Any, support: Any, user_id: str) -> list[dict[str, Any]]:
    """The user's items in the operator's review queue (every status), once the queue has them:
    ``recommendations.batch_generated`` reaches the operator asynchronously."""
    with stack.client(admin_token(stack, support)) as admin:

        def listed() -> list[dict[str, Any]] | None:
            found = admin.get("/api/v1/operator/review", params={"user_id": user_id, "limit": 100})
            assert found.status_code == 200, found.text
            return found.json()["items"] or None

        items: list[dict[str, Any]] = support.wait_for(listed, PIPELINE_WAIT_MS / 1000, "the review queue", 1)
        return items


def sign_in_at(page: Page, path: str, email: str, password: str) -> None:
    """Open ``path`` signed out (the app sends to sign-in first) and sign in; back at ``path`` after."""
    page.goto(path)
    page.wait_for_url("**/signin")
    sign_in(page, email, password)
    page.wait_for_url(f"**{path}")
