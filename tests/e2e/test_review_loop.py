"""The review loop and the end of a user's data, through the gateway of the embedded stack.

A user signs up, consents and uploads their own file; their recommendations wait for review, invisible
to them; an operator approves some, overrides one (an edited text that fails the guardrails is refused
first), rejects one; the user then sees exactly the approved and overridden ones, and their phone is
told. A user who revokes right after an upload ends with nothing visible, and no service works for them
once it has seen the revocation. A user who asks to be erased is gone from every API, and the admin
sees every service confirm it.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "e2e_support.py", "spendsense_e2e_support")
Stack = support.Stack
WAIT_S = support.PIPELINE_WAIT_S

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]


def admin_client(stack: Stack) -> httpx.Client:
    signed_in = support.admin_login(stack)
    assert signed_in.status_code == 200, signed_in.text
    return stack.client(signed_in.json()["access_token"])


def signed_up_user(stack: Stack, prefix: str) -> tuple[str, httpx.Client]:
    body = support.register(stack.gateway, support.unique_email(prefix))
    return body["user"]["id"], stack.client(body["access_token"])


def upload_own_file(client: httpx.Client, user_id: str, correlation_id: str | None = None) -> str:
    headers = {"X-Correlation-ID": correlation_id} if correlation_id else {}
    accepted = client.post(
        "/api/v1/uploads",
        files={"file": ("data.json", json.dumps(support.card_user(user_id)))},
        headers=headers,
    )
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["upload_id"])


def queued_items(operator: httpx.Client, user_id: str) -> list[dict[str, Any]] | None:
    response = operator.get("/api/v1/operator/review", params={"user_id": user_id, "limit": 50})
    assert response.status_code == 200, response.text
    return response.json()["items"] or None


def test_the_user_sees_exactly_what_an_operator_approved_or_overrode(stack: Stack) -> None:
    user_id, me = signed_up_user(stack, "review")
    device_token = uuid.uuid4().hex * 2
    operator = admin_client(stack)
    with me, operator:
        device = me.post("/api/v1/mobile/push/register", json={"token": device_token, "platform": "ios"})
        assert device.status_code == 201, device.text
        assert me.post("/api/v1/consent", json={"user_id": user_id}).status_code == 201
        upload_own_file(me, user_id)

        items = support.wait_for(lambda: queued_items(operator, user_id), WAIT_S, "the user's items queued")
        assert {i["status"] for i in items} == {"pending"}
        assert me.get(f"/api/v1/recommendations/{user_id}").json()["items"] == []  # pending: invisible
        assert me.get("/api/v1/operator/review").status_code == 403  # users do not review

        education = sorted((i for i in items if i["kind"] == "education"), key=lambda i: i["rank"])
        offers = [i for i in items if i["kind"] == "offer"]
        assert len(education) >= 3, items
        assert offers, items
        approved = [i["recommendation_id"] for i in education[:2]]
        overridden, rejected = education[2], offers[0]

        decided = operator.post("/api/v1/operator/approve", json={"recommendation_ids": approved})
        assert decided.status_code == 200, decided.text
        invented = {
            "title": overridden["title"],
            "body": overridden["body"],
            "rationale": "Your card is at 97% of its limit, so paying $12,345 now would help you a lot.",
        }
        refused = operator.post(
            "/api/v1/operator/override",
            json={
                "recommendation_id": overridden["recommendation_id"],
                "reason": "clearer",
                "text": invented,
            },
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "guardrails_failed"
        edited = {
            "title": "A steady plan for your card balance",
            "body": overridden["body"],
            "rationale": overridden["rationale"] + " An operator reviewed this suggestion for you.",
        }
        override = operator.post(
            "/api/v1/operator/override",
            json={"recommendation_id": overridden["recommendation_id"], "reason": "clearer", "text": edited},
        )
        assert override.status_code == 200, override.text
        rejection = operator.post(
            "/api/v1/operator/reject",
            json={"recommendation_ids": [rejected["recommendation_id"]], "reason": "not for this user now"},
        )
        assert rejection.status_code == 200, rejection.text

        visible_ids = {*approved, overridden["recommendation_id"]}

        def visible() -> list[dict[str, Any]] | None:
            shown = me.get(f"/api/v1/recommendations/{user_id}").json()["items"]
            return shown if {i["id"] for i in shown} == visible_ids else None

        shown = support.wait_for(visible, WAIT_S, "the approved and overridden items visible to the user")
        by_id = {i["id"]: i for i in shown}
        assert by_id[overridden["recommendation_id"]]["title"] == edited["title"]
        assert by_id[overridden["recommendation_id"]]["rationale"] == edited["rationale"]
        assert all(i["disclosure"].startswith("This is educational content") for i in shown)

        audit = operator.get("/api/v1/operator/audit", params={"user_id": user_id}).json()["items"]
        assert sorted(e["action"] for e in audit) == ["approve", "approve", "override", "reject"]
        traces = operator.get(f"/api/v1/recommendations/{user_id}/traces").json()
        assert traces["chain"]["ok"] is True, traces["chain"]
        assert traces["chain"]["checked"] == len(items)

    verified = support.cli("traces", "verify", user_id, "--state-dir", str(stack.state_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "chain: intact" in verified.stdout
    assert f"{len(items)}/{len(items)} decisions reproduce" in verified.stdout
    pushes = support.wait_for(
        lambda: support.pushes(stack.aws, device_token) or None, WAIT_S, "a push notification to the device"
    )
    assert all("new recommendation" in p and user_id not in p for p in pushes), pushes


def log_entries(stack: Stack, name: str) -> list[dict[str, Any]]:
    path: Path = stack.state_dir / "logs" / f"{name}.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def handled_at(entries: list[dict[str, Any]], event_type: str, correlation_id: str) -> datetime | None:
    for entry in entries:
        if (
            entry.get("event") == "event_handled"
            and entry.get("event_type") == event_type
            and entry.get("correlation_id") == correlation_id
        ):
            return datetime.fromisoformat(entry["timestamp"])
    return None


def test_revoking_right_after_an_upload_leaves_nothing_visible_and_stops_the_work(stack: Stack) -> None:
    user_id, me = signed_up_user(stack, "revoke")
    upload_corr, revoke_corr = f"corr-upload-{user_id}", f"corr-revoke-{user_id}"
    workers = {s: f"{s}-worker" for s in ("features", "recommender", "operator")}
    operator = admin_client(stack)
    with me, operator:
        assert me.post("/api/v1/consent", json={"user_id": user_id}).status_code == 201
        upload_id = upload_own_file(me, user_id, upload_corr)
        revoked = me.delete(f"/api/v1/consent/{user_id}", headers={"X-Correlation-ID": revoke_corr})
        assert revoked.status_code == 200, revoked.text

        def revocation_seen() -> dict[str, datetime] | None:
            seen = {
                s: handled_at(log_entries(stack, log), "consent.revoked", revoke_corr)
                for s, log in workers.items()
            }
            return seen if all(seen.values()) else None  # type: ignore[return-value]

        seen = support.wait_for(revocation_seen, WAIT_S, "every worker has seen the revocation")

        def settled() -> str | None:
            """The upload's chain is over: refused by features, or analyzed before the revocation and then
            handed to the recommender and the operator, who had seen the revocation."""
            status = me.get(f"/api/v1/uploads/{upload_id}").json()["status"]
            if status == "failed":
                return status
            if status == "analyzed" and all(
                handled_at(log_entries(stack, workers[s]), "personas.assigned", upload_corr)
                for s in ("recommender", "operator")
            ):
                return status
            return None

        support.wait_for(settled, WAIT_S, "the upload's chain settles")

        for answer in (
            me.get(f"/api/v1/profile/{user_id}/persona"),
            me.get(f"/api/v1/recommendations/{user_id}"),
            operator.get(f"/api/v1/recommendations/{user_id}/traces"),
            operator.get(f"/api/v1/operator/users/{user_id}"),
        ):
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"]["code"] == "consent_required"
        assert operator.get("/api/v1/operator/review", params={"user_id": user_id}).json()["items"] == []

    # Once a service had seen the revocation, every event of the upload it handled was skipped for consent.
    for service, log in workers.items():
        after = [
            e
            for e in log_entries(stack, log)
            if e.get("correlation_id") == upload_corr
            and datetime.fromisoformat(e["timestamp"]) > seen[service]
        ]
        handled = [e for e in after if e.get("event") == "event_handled"]
        skipped = [
            e for e in after if e.get("reason") == "consent_required" and e["event"].endswith("_skipped")
        ]
        assert len(skipped) == len(handled), (service, after)
        assert not [e for e in after if e.get("event") in ("review_queued", "persona_projected")], (
            service,
            after,
        )


def test_an_erased_user_is_gone_from_every_api_and_every_service_confirms(stack: Stack) -> None:
    user_id, me = signed_up_user(stack, "erase")
    operator = admin_client(stack)
    with me, operator:
        assert me.post("/api/v1/consent", json={"user_id": user_id}).status_code == 201
        upload_own_file(me, user_id)
        support.wait_for(lambda: queued_items(operator, user_id), WAIT_S, "the user's items queued")

        erased = me.delete(f"/api/v1/consent/{user_id}", params={"erase": "true"})
        assert erased.status_code == 202, erased.text

        last: list[str] = []

        def complete() -> dict[str, Any] | None:
            progress = operator.get(f"/api/v1/admin/erasures/{user_id}")
            last[:] = [progress.text]
            return progress.json() if progress.status_code == 200 and progress.json()["complete"] else None

        try:
            progress = support.wait_for(complete, WAIT_S, "every service confirms the erasure")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last progress: {last}") from None
        assert {s["service"] for s in progress["services"] if s["erased_at"]} == set(support.SERVICES)
        assert user_id not in json.dumps(progress)

        for path in (
            f"/api/v1/profile/{user_id}",
            f"/api/v1/consent/{user_id}",
            f"/api/v1/profile/{user_id}/persona",
            f"/api/v1/profile/{user_id}/signals",
            f"/api/v1/recommendations/{user_id}",
            f"/api/v1/recommendations/{user_id}/traces",
            f"/api/v1/operator/users/{user_id}",
            f"/api/v1/users/{user_id}",
        ):
            answer = operator.get(path)
            assert answer.status_code == 404, (path, answer.text)
