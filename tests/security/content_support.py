"""What the content-security tests (``test_content_*.py``) share: the real profile app with the worker's
upload jobs on the same database and data bucket, and the recommender fed one user's
``persona.assigned`` (the per-user event it still handles) with its details checked in as the features
service checks them in.

Loaded by path (``load_beside``): under pytest's importlib mode the tests are not an importable package.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import httpx

from spendsense_features.domain.analysis import analyze
from spendsense_features.domain.rules import load_rule_set
from spendsense_profile.bootstrap import SERVICE as PROFILE
from spendsense_profile.bootstrap import upload_jobs
from spendsense_profile.domain.ingest import parse_upload
from spendsense_recommender.adapters.unit_of_work import SqlRecommenderUnitOfWork
from spendsense_shared.consent import apply_consent_event
from spendsense_shared.messaging.catalog import ConsentGranted, PersonaAssigned, new_event, parse_data
from spendsense_shared.messaging.claim_check import check_in_many
from spendsense_shared.messaging.contracts import AccountKind, AnalysisReport, PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.storage import ObjectStore

Json = dict[str, Any]


# -- profile ----------------------------------------------------------------------------------------------


class ProfileApp:
    """The real profile app behind an HTTP client, and the worker's upload jobs (``work``)."""

    def __init__(self, client: Any):
        client.timeout = httpx.Timeout(30)
        self.client = client
        self.platform = client.platform
        self.jobs = upload_jobs(self.platform, PROFILE.bootstrap(self.platform))

    def as_(self, user: str, *roles: str) -> dict[str, str]:
        return dict(self.client.as_(user, *roles))

    async def grant(self, *users: str) -> None:
        for user in users:
            answer = await self.client.post("/api/v1/consent", json={"user_id": user}, headers=self.as_(user))
            assert answer.status_code == 201, answer.text

    async def revoke(self, user: str) -> None:
        answer = await self.client.delete(f"/api/v1/consent/{user}", headers=self.as_(user))
        assert answer.is_success, answer.text

    async def upload(self, actor: str, *roles: str, users: list[Json]) -> str:
        """POST the users as one JSON upload, let the worker ingest it; the upload id."""
        body = json.dumps(users[0] if len(users) == 1 else {"users": users}).encode()
        headers = {"Content-Type": "application/json", **self.as_(actor, *roles)}
        answer = await self.client.post("/api/v1/uploads", content=body, headers=headers)
        assert answer.status_code == 202, answer.text
        await self.jobs.run_pending()
        return str(answer.json()["upload_id"])

    async def read_upload(self, upload_id: str, actor: str, *roles: str) -> httpx.Response:
        return await self.client.get(f"/api/v1/uploads/{upload_id}", headers=self.as_(actor, *roles))


def plaid_user(user_id: str, merchant: str = "Acme Coffee") -> Json:
    """A small Plaid-style user: a personal checking account, a business account (which the parser keeps
    apart and names in the upload's notes), three coffee purchases."""

    def account(suffix: str, holder: str) -> Json:
        return {
            "account_id": f"{user_id}-{suffix}",
            "name": "Everyday Checking",
            "official_name": None,
            "type": "depository",
            "subtype": "checking",
            "holder_category": holder,
            "balances": {"available": 950.0, "current": 1000.0, "limit": None, "iso_currency_code": "USD"},
            "mask": "0001",
        }

    purchase = {
        "authorized_date": None,
        "amount": 12.5,
        "iso_currency_code": "USD",
        "name": merchant.upper(),
        "merchant_name": merchant,
        "merchant_entity_id": None,
        "payment_channel": "in store",
        "personal_finance_category": {"primary": "FOOD_AND_DRINK", "detailed": "FOOD_AND_DRINK_COFFEE"},
        "pending": False,
    }
    return {
        "user_id": user_id,
        "accounts": [account("chk", "individual"), account("biz", "business")],
        "transactions": [
            {
                **purchase,
                "transaction_id": f"{user_id}-t{i}",
                "account_id": f"{user_id}-chk",
                "date": f"2026-11-0{i}",
            }
            for i in (1, 2, 3)
        ],
        "liabilities": {"credit": [], "mortgage": [], "student": []},
    }


# -- recommender ------------------------------------------------------------------------------------------


def analysis_of(user: Json) -> tuple[Json, list[AccountKind]]:
    """The features service's analysis of one uploaded user: its report (as JSON) and account kinds."""
    parsed = parse_upload(io.BytesIO(json.dumps(user).encode()), filename="u.json")
    [raw] = analyze(parsed.tables, load_rule_set())
    report = AnalysisReport.model_validate(raw).model_dump(mode="json", by_alias=True)
    accounts = [
        AccountKind(**{k: a[k] for k in ("type", "subtype", "name", "official_name", "holder_category")})
        for a in parsed.tables["accounts"].to_pylist()
    ]
    return report, accounts


async def persona_assigned(store: ObjectStore, report: Json, accounts: list[AccountKind]) -> EventEnvelope:
    """``persona.assigned`` for one user (the per-user event the recommender still handles): the details
    checked into the bucket, as the features service checks them in."""
    validated = AnalysisReport.model_validate(report)
    body = PersonaDetails(report=validated, accounts=accounts).model_dump_json(by_alias=True).encode()
    key = f"features/users/{validated.user_id}/analysis/up-security.json"
    [claim] = await check_in_many(store, [(key, body)])
    assert validated.as_of is not None
    data = PersonaAssigned(
        user_id=validated.user_id,
        upload_id="up-security",
        as_of=validated.as_of,
        rule_set_version="personas-v1",
        personas={w: v.persona.primary or "general_wellness" for w, v in validated.windows.items()},
        details=claim,
    )
    return new_event(data, user_id=validated.user_id)


async def grant_in_recommender(client: Any, user_id: str) -> None:
    """The recommender's consent projection learns of the user's consent (as its consumer would)."""
    event = new_event(
        ConsentGranted(
            user_id=user_id,
            consent_id="c",
            policy_version="1",
            scopes=["analysis"],
            granted_at=datetime.now(UTC),
        )
    )
    async with client.platform.database.uow_factory(SqlRecommenderUnitOfWork)() as uow:
        await apply_consent_event(uow, event, parse_data(event))
        await uow.commit()
