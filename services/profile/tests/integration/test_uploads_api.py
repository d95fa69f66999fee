"""``/api/v1/uploads`` against real PostgreSQL and the S3 emulator, with the worker's upload jobs (parsing
in a child process under budgets): an upload is received at once (202 ``received``) and its bytes wait in
the data bucket; the worker ingests uploads in every format (stored, snapshotted as Parquet, announced) or
fails them with every problem at its path, leaving nothing but the upload's row; progress events move an
upload forward, never backwards; a merge of two accounts moves the merged-away one's uploads, data and
consent to the remaining one. The bombs and budgets are in ``test_upload_budgets.py``."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections import Counter
from datetime import date
from typing import Any

import httpx
import pytest
from plaid_files import csv_files, to_jsonl, to_zip
from sqlalchemy import select

from spendsense_cli.synthetic import build_user
from spendsense_features.adapters.orm import messaging as features_tables
from spendsense_features.bootstrap import SERVICE as FEATURES
from spendsense_profile.adapters import data_store
from spendsense_profile.adapters.orm import (
    accounts,
    consents,
    credit_liabilities,
    messaging,
    profiles,
    push_devices,
    transactions,
    upload_users,
    uploads,
)
from spendsense_profile.adapters.unit_of_work import SqlProfileUnitOfWork
from spendsense_profile.bootstrap import SERVICE, upload_jobs
from spendsense_profile.domain import uploads as uploads_domain
from spendsense_profile.domain.ingest import parse_upload
from spendsense_profile.domain.profile import PushDevice
from spendsense_shared.aws import Aws
from spendsense_shared.dataset import TABLES, chunk_snapshot_key, from_parquet
from spendsense_shared.db import asyncpg_dsn
from spendsense_shared.messaging.catalog import (
    EventData,
    GeneratedForUser,
    PersonaAssigned,
    RecommendationsBatchGenerated,
    RecommendationsGenerated,
    UploadFailed,
    UserMerged,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import ClaimCheck
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.storage import ObjectStore
from spendsense_shared.testing.bus import consumer_for, eventually, relay_for
from spendsense_shared.testing.events import assigned_together
from spendsense_shared.user_changes import UserChangeListener

DATA_TABLES = {"accounts": accounts, "transactions": transactions, "credit_liabilities": credit_liabilities}

# -- a small Plaid-style user ------------------------------------------------------------------------------


def account(account_id: str = "acc_chk", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "account_id": account_id,
        "name": "Everyday Checking",
        "official_name": "Everyday Checking Account",
        "type": "depository",
        "subtype": "checking",
        "holder_category": "individual",
        "balances": {"available": 950.0, "current": 1000.0, "limit": None, "iso_currency_code": "USD"},
        "mask": "0001",
    }
    return {**base, **fields}


def card(account_id: str = "acc_card") -> dict[str, Any]:
    return account(
        account_id,
        name="Rewards Card",
        official_name=None,
        type="credit",
        subtype="credit card",
        balances={"available": 700.0, "current": 300.0, "limit": 1000.0, "iso_currency_code": "USD"},
        mask="0002",
    )


def txn(transaction_id: str, account_id: str = "acc_chk", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "transaction_id": transaction_id,
        "account_id": account_id,
        "date": "2026-11-01",
        "authorized_date": None,
        "amount": 12.5,
        "iso_currency_code": "USD",
        "name": "STARBUCKS 1234",
        "merchant_name": "Starbucks",
        "merchant_entity_id": None,
        "payment_channel": "in store",
        "personal_finance_category": {"primary": "FOOD_AND_DRINK", "detailed": "FOOD_AND_DRINK_COFFEE"},
        "pending": False,
    }
    return {**base, **fields}


def credit(account_id: str = "acc_card") -> dict[str, Any]:
    return {
        "account_id": account_id,
        "aprs": [
            {
                "apr_percentage": 24.99,
                "apr_type": "purchase_apr",
                "balance_subject_to_apr": 300.0,
                "interest_charge_amount": 6.25,
            }
        ],
        "is_overdue": False,
        "last_payment_amount": 35.0,
        "last_payment_date": "2026-10-05",
        "last_statement_balance": 300.0,
        "last_statement_issue_date": "2026-09-28",
        "minimum_payment_amount": 35.0,
        "next_payment_due_date": "2026-12-25",
    }


def plaid_user(user_id: str = "u1", txns: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "accounts": [account(), card()],
        "transactions": txns
        if txns is not None
        else [
            txn("t1"),
            txn("t2", "acc_card", date="2026-11-03", amount=-40.0, name="REFUND", merchant_name="Acme"),
            txn(
                "t3",
                date="2026-11-05",
                amount=-2500.0,
                name="PAYROLL ACME",
                merchant_name=None,
                payment_channel="other",
                personal_finance_category={"primary": "INCOME", "detailed": "INCOME_WAGES"},
            ),
        ],
        "liabilities": {"credit": [credit()], "mortgage": [], "student": []},
    }


def batch(*user_ids: str) -> list[dict[str, Any]]:
    """Several users for one upload (transaction ids are unique across an upload, not just per user)."""
    return [
        plaid_user(
            u, [{**t, "transaction_id": f"{u}-{t['transaction_id']}"} for t in plaid_user(u)["transactions"]]
        )
        for u in user_ids
    ]


# The normalized rows the default user becomes, whatever the format it was uploaded in.
EXPECTED_TRANSACTIONS = [
    ("t1", "acc_chk", date(2026, 11, 1), 12.5, "FOOD_AND_DRINK", "FOOD_AND_DRINK_COFFEE", False),
    ("t2", "acc_card", date(2026, 11, 3), -40.0, "FOOD_AND_DRINK", "FOOD_AND_DRINK_COFFEE", False),
    ("t3", "acc_chk", date(2026, 11, 5), -2500.0, "INCOME", "INCOME_WAGES", False),
]
EXPECTED_ACCOUNTS = [
    ("acc_card", "credit", "credit card", 700.0, 300.0, 1000.0),
    ("acc_chk", "depository", "checking", 950.0, 1000.0, None),
]
EXPECTED_COUNTS = {"accounts": 2, "transactions": 3, "credit_liabilities": 1}


def snapshot_object(upload_id: str, table: str) -> str:
    """The key of an upload's (one-chunk) snapshot of ``table`` in the data bucket."""
    return f"profile/{chunk_snapshot_key(upload_id, '0000', table)}"


def table_counts(counts: dict[str, int]) -> dict[str, int]:
    """Rows merged per table; any other count (e.g. transactions removed by a sync body) must be 0 here."""
    assert all(v == 0 for k, v in counts.items() if k not in TABLES), counts
    return {k: v for k, v in counts.items() if k in TABLES}


# -- serializers: the unit tests' Plaid file builders -------------------------------------------------------


def to_csv_zip(users: list[dict[str, Any]]) -> bytes:
    """The users as a zip of accounts.csv, transactions.csv and liabilities.csv, inside a folder."""
    return to_zip({f"export/{name}": text for name, text in csv_files(users).items()})


def upload_request(fmt: str, users: list[dict[str, Any]]) -> dict[str, Any]:
    """httpx keyword arguments that upload ``users`` in ``fmt``."""
    if fmt == "json":
        body = json.dumps(users[0] if len(users) == 1 else {"users": users}).encode()
        return {"content": body, "headers": {"Content-Type": "application/json"}}
    if fmt == "multipart":
        body = json.dumps(users[0] if len(users) == 1 else {"users": users}).encode()
        return {"files": {"file": ("plaid.json", body, "application/json")}}
    if fmt == "jsonl":
        return {"content": to_jsonl(users), "headers": {"Content-Type": "application/x-ndjson"}}
    if fmt == "zip":
        return {"content": to_csv_zip(users), "headers": {"Content-Type": "application/zip"}}
    raise ValueError(fmt)


# -- the service -------------------------------------------------------------------------------------------


class Profile:
    """An HTTP client on the real profile app, the worker's upload jobs on the same database and bucket,
    and direct views of what it stored."""

    def __init__(self, client: Any, bucket: str, parser: Any = None):
        client.timeout = httpx.Timeout(30)
        self.client = client
        self.platform = client.platform
        self.db = self.platform.database
        self.bucket = ObjectStore(self.platform.aws, bucket, "")
        wiring = SERVICE.bootstrap(self.platform, parser=parser)  # as the worker wires them
        self.handlers = wiring.event_handlers
        self.jobs = upload_jobs(self.platform, wiring)

    def as_(self, user: str, *roles: str) -> dict[str, str]:
        return dict(self.client.as_(user, *roles))

    async def work(self) -> int:
        """What the worker does with every upload waiting for it; how many it took."""
        return await self.jobs.run_pending()

    async def grant(self, *users: str) -> None:
        for user in users:
            response = await self.client.post(
                "/api/v1/consent", json={"user_id": user}, headers=self.as_(user)
            )
            assert response.status_code == 201, response.text

    async def upload(
        self, actor: str, *roles: str, fmt: str = "json", users=None, work: bool = True, **extra: Any
    ):
        """POST it; then (``work``) let the worker process it, as it would at once."""
        request = upload_request(fmt, users or [plaid_user(actor)])
        headers = {**request.pop("headers", {}), **self.as_(actor, *roles), **extra.pop("headers", {})}
        response = await self.client.post("/api/v1/uploads", headers=headers, **request, **extra)
        if work and response.status_code == 202:
            await self.work()
        return response

    async def ingested(self, actor: str, *roles: str, **kwargs: Any) -> dict[str, Any]:
        """Upload, process, and the upload as its uploader sees it, which must be ingested."""
        response = await self.upload(actor, *roles, **kwargs)
        assert response.status_code == 202, response.text
        record = await self.status(response.json()["upload_id"], actor, *(roles or ("user",)))
        assert record["status"] == "ingested", record
        return record

    async def rows(self, table: Any, *order: str) -> list[Any]:
        query = select(table).order_by(*(table.c[c] for c in order))
        async with self.db.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def outbox(self) -> list[dict[str, Any]]:
        async with self.db.engine.connect() as conn:
            rows = (
                await conn.execute(select(messaging.outbox.c.payload).order_by(messaging.outbox.c.seq))
            ).all()
        return [r.payload for r in rows]

    async def upload_events(self) -> list[dict[str, Any]]:
        return [e for e in await self.outbox() if e["type"] == "upload.ingested"]

    async def objects(self) -> list[str]:
        return sorted(await self.bucket.list(""))

    async def assert_nothing_stored(self, *, but_failed_uploads: int = 0) -> None:
        """Nothing of the uploads anywhere — except, for uploads that were received and then failed,
        their rows (status ``failed`` and the reason, nothing else)."""
        for name, table in DATA_TABLES.items():
            assert await self.rows(table, "user_id") == [], name
        left = await self.rows(uploads, "upload_id")
        assert len(left) == but_failed_uploads, left
        for row in left:
            assert (row.status, row.user_ids, row.keys, row.counts, row.source_key) == (
                "failed",
                [],
                [],
                {},
                None,
            )
            assert row.error["code"], row.error
            assert row.error["message"], row.error
        assert await self.rows(upload_users, "upload_id") == []
        assert await self.objects() == []
        assert await self.upload_events() == []

    async def failure(self, response: httpx.Response, actor: str = "ops", *roles: str) -> dict[str, Any]:
        """The error of an upload that was received (202) and then failed."""
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "received"
        record = await self.status(response.json()["upload_id"], actor, *roles)
        assert record["status"] == "failed", record
        assert record["users"] == []
        return dict(record["error"])

    async def progress(self, data: EventData) -> None:
        """Deliver a downstream event to the wired handler in one unit of work, as the consumer does."""
        envelope = new_event(data, user_id=getattr(data, "user_id", None))
        async with self.db.uow_factory(SqlProfileUnitOfWork)() as uow:
            await self.handlers[envelope.type](envelope, data, uow)
            await uow.commit()

    async def status(self, upload_id: str, actor: str = "ops", *roles: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/api/v1/uploads/{upload_id}", headers=self.as_(actor, *(roles or ("operator",)))
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
async def data_bucket(settings_for, isolation_id) -> str:
    """This test's data bucket on the emulator (only it: the whole topology takes longer to provision)."""
    bucket = build_topology(isolation_id).buckets["data"]
    async with Aws(settings_for("profile")).client("s3") as s3:
        await s3.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
async def profile(service_client, data_bucket):
    return Profile(await service_client(SERVICE), data_bucket)


# -- accepted uploads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "multipart", "jsonl", "zip"])
async def test_an_accepted_upload_is_stored_snapshotted_and_announced(profile, data_bucket, fmt):
    await profile.grant("u1")
    response = await profile.upload("u1", fmt=fmt, headers={"X-Correlation-ID": f"corr-{fmt}"}, work=False)

    # At once: a claim check. The bytes wait in the data bucket; nothing is parsed yet.
    assert response.status_code == 202, response.text
    body = response.json()
    upload_id = body["upload_id"]
    assert upload_id.startswith("up_")
    assert (body["status"], body["user_ids"], body["counts"]) == ("received", [], {})
    assert body["size_bytes"] > 0
    assert response.headers["location"] == f"/api/v1/uploads/{upload_id}"
    assert await profile.objects() == [f"profile/uploads/{upload_id}/source"]
    received = await profile.status(upload_id, "u1", "user")
    assert (received["status"], received["users"], received["error"]) == ("received", [], None)
    assert await profile.rows(transactions, "transaction_id") == []

    assert await profile.work() == 1  # the worker's job
    assert await profile.work() == 0  # and nothing is left to do

    stored_txns = await profile.rows(transactions, "transaction_id")
    assert [
        (
            r.transaction_id,
            r.account_id,
            r.date,
            r.amount,
            r.category_primary,
            r.category_detailed,
            r.pending,
        )
        for r in stored_txns
    ] == EXPECTED_TRANSACTIONS
    assert {(r.user_id, r.upload_id) for r in stored_txns} == {("u1", upload_id)}
    stored_accounts = await profile.rows(accounts, "account_id")
    assert [
        (r.account_id, r.type, r.subtype, r.balance_available, r.balance_current, r.balance_limit)
        for r in stored_accounts
    ] == EXPECTED_ACCOUNTS
    [liability] = await profile.rows(credit_liabilities, "account_id")
    assert (liability.account_id, liability.purchase_apr, liability.interest_charge_amount) == (
        "acc_card",
        24.99,
        6.25,
    )
    assert liability.next_payment_due_date == date(2026, 12, 25)

    # One Parquet snapshot per table (the upload's one chunk of users), holding exactly the stored rows in
    # the normalized schema (nulls, empty strings, dates, booleans and floats as stored).
    expected_keys = sorted(snapshot_object(upload_id, name) for name in TABLES)
    assert await profile.objects() == expected_keys
    for name, schema in TABLES.items():
        snapshot = from_parquet(await profile.bucket.get(snapshot_object(upload_id, name)))
        assert snapshot.schema.remove_metadata().equals(schema), name
        stored = [
            {c: getattr(r, c) for c in schema.names}
            for r in await profile.rows(DATA_TABLES[name], "user_id", schema.names[1])
        ]
        key = schema.names[1]
        assert sorted(snapshot.to_pylist(), key=lambda r: r[key]) == stored, name

    [event] = await profile.upload_events()
    assert event["correlation_id"] == f"corr-{fmt}"
    assert event["producer"] == "profile"
    assert event["user_id"] == "u1"
    assert event["data"]["upload_id"] == upload_id
    assert event["data"]["user_ids"] == ["u1"]
    assert event["data"]["bucket"] == data_bucket
    assert sorted(event["data"]["keys"]) == expected_keys
    assert event["data"]["as_of"] == "2026-11-05"

    record = await profile.status(upload_id, "u1")
    assert record["status"] == "ingested"
    assert record["users"] == [{"user_id": "u1", "stage": "ingested", "reason": None}]
    assert table_counts(record["counts"]) == EXPECTED_COUNTS
    assert record["as_of"] == "2026-11-05"
    assert record["error"] is None
    assert record["size_bytes"] == body["size_bytes"]


async def test_an_operator_imports_a_batch_of_users_in_one_upload(profile):
    users = [build_user(i)[0] for i in range(3)]
    ids = sorted(u["user_id"] for u in users)
    await profile.grant(*ids)

    body = await profile.ingested("ops", "operator", fmt="jsonl", users=users)

    upload_id = body["upload_id"]
    assert [u["user_id"] for u in body["users"]] == ids
    assert table_counts(body["counts"]) == {
        "accounts": sum(len(u["accounts"]) for u in users),
        "transactions": sum(len(u["transactions"]) for u in users),
        "credit_liabilities": sum(len(u["liabilities"]["credit"]) for u in users),
    }
    stored = await profile.rows(transactions, "user_id", "transaction_id")
    assert len(stored) == body["counts"]["transactions"]
    per_user = {u: sum(1 for r in stored if r.user_id == u) for u in ids}
    assert per_user == {u["user_id"]: len(u["transactions"]) for u in users}

    # The chunk of users shares one snapshot per table, holding each user's rows, named after no user.
    assert await profile.objects() == sorted(snapshot_object(upload_id, name) for name in TABLES)
    snapshot = from_parquet(await profile.bucket.get(snapshot_object(upload_id, "transactions")))
    assert Counter(snapshot["user_id"].to_pylist()) == per_user

    [event] = await profile.upload_events()
    assert event["user_id"] is None  # several users: the envelope names none of them
    assert event["data"]["user_ids"] == ids
    assert sorted(event["data"]["keys"]) == await profile.objects()
    record = await profile.status(upload_id, "ops", "operator")
    assert [u["user_id"] for u in record["users"]] == ids
    assert {u["stage"] for u in record["users"]} == {"ingested"}


async def test_re_uploading_overlapping_data_updates_rows_instead_of_duplicating_them(profile):
    await profile.grant("u1")
    first = await profile.ingested("u1", users=[plaid_user("u1", [txn("t1"), txn("t2", amount=20.0)])])
    changed = plaid_user("u1", [txn("t1", amount=99.0), txn("t3", date="2026-11-02", amount=7.0)])
    changed["accounts"][0]["balances"]["current"] = 1234.0
    second = await profile.ingested("u1", users=[changed])
    first_id, second_id = first["upload_id"], second["upload_id"]

    stored = await profile.rows(transactions, "transaction_id")
    assert [(r.transaction_id, r.amount, r.upload_id) for r in stored] == [
        ("t1", 99.0, second_id),
        ("t2", 20.0, first_id),
        ("t3", 7.0, second_id),
    ]
    checking = [r for r in await profile.rows(accounts, "account_id") if r.account_id == "acc_chk"]
    assert [(r.balance_current, r.upload_id) for r in checking] == [(1234.0, second_id)]

    # The new snapshot is the user's whole history after the merge, each transaction once.
    latest = from_parquet(await profile.bucket.get(snapshot_object(second_id, "transactions")))
    assert sorted(zip(latest["transaction_id"].to_pylist(), latest["amount"].to_pylist(), strict=True)) == [
        ("t1", 99.0),
        ("t2", 20.0),
        ("t3", 7.0),
    ]
    # The first snapshot is what was true then.
    earlier = from_parquet(await profile.bucket.get(snapshot_object(first_id, "transactions")))
    assert sorted(zip(earlier["transaction_id"].to_pylist(), earlier["amount"].to_pylist(), strict=True)) == [
        ("t1", 12.5),
        ("t2", 20.0),
    ]
    assert [e["data"]["upload_id"] for e in await profile.upload_events()] == [first_id, second_id]


async def test_the_snapshots_of_new_users_written_from_the_upload_are_their_rows_read_back(profile):
    """New users' snapshots are written from the parsed tables, not read back from PostgreSQL: they must
    be what reading back gives (floats whose shortest form is long, nulls, empty strings, dates)."""
    users = [build_user(i, seed=5)[0] for i in range(3)]
    odd = users[0]["transactions"]
    odd[0]["amount"], odd[1]["amount"], odd[2]["amount"] = 0.1 + 0.2, 1e-7, 123456789.12345679
    odd[3]["merchant_name"], odd[4]["authorized_date"] = "", None
    ids = sorted(u["user_id"] for u in users)
    await profile.grant(*ids)
    upload_id = (await profile.ingested("ops", "operator", users=users))["upload_id"]

    async with profile.db.uow_factory(SqlProfileUnitOfWork)() as uow:
        read_back = await uow.data.snapshot(ids)
    for name, schema in TABLES.items():
        written = from_parquet(await profile.bucket.get(snapshot_object(upload_id, name)))
        by_key = [("user_id", "ascending"), (schema.names[1], "ascending")]
        assert written.cast(schema).sort_by(by_key).equals(read_back[name].sort_by(by_key)), name
    assert written.num_rows > 0


async def test_new_users_chunks_are_announced_staged_before_the_merge_commits(profile, monkeypatch):
    """While PostgreSQL merges new users' rows, their chunks are announced as ``upload.staged`` (the same
    users, keys and as-of date as the ``upload.ingested`` that follows), committed on their own before
    the upload's transaction; users who hold rows already are read back after the merge: no hint."""
    users = [build_user(i, seed=7)[0] for i in range(3)]
    ids = sorted(u["user_id"] for u in users)
    await profile.grant(*ids)
    staged_while_merging: list[bool] = []
    merge = data_store.SqlNormalizedData.merge

    async def merge_and_look(self: Any, tables: Any, upload_id: str) -> Any:
        merged = await merge(self, tables, upload_id)
        await asyncio.sleep(0.2)  # the hint is written concurrently with the merge
        staged_while_merging.append(any(e["type"] == "upload.staged" for e in await profile.outbox()))
        return merged

    monkeypatch.setattr(data_store.SqlNormalizedData, "merge", merge_and_look)
    monkeypatch.setattr(uploads_domain, "USERS_PER_EVENT", 2)  # two chunks: each is staged as it is written
    first = (await profile.ingested("ops", "operator", users=users))["upload_id"]
    assert staged_while_merging == [True]
    events = await profile.outbox()
    staged = [e for e in events if e["type"] == "upload.staged"]
    ingested = await profile.upload_events()
    assert [e["data"] for e in staged] == [e["data"] for e in ingested]
    assert max(events.index(e) for e in staged) < min(events.index(e) for e in ingested)
    assert [e["data"]["user_ids"] for e in staged] == [ids[:2], ids[2:]]
    assert {e["data"]["upload_id"] for e in staged} == {first}
    assert {e["correlation_id"] for e in staged} == {ingested[0]["correlation_id"]}

    await profile.ingested("ops", "operator", users=users)  # again: they hold rows now
    assert [e["type"] for e in await profile.outbox()].count("upload.staged") == 2


async def test_a_copy_straight_into_a_table_is_undone_when_a_key_is_taken(profile):
    """New rows go straight into the table in a savepoint; a key taken meanwhile (a concurrent upload of
    the same user) undoes that copy alone, and the rows are upserted instead."""
    await profile.grant("u1")
    first = await profile.ingested("u1", users=[plaid_user("u1", [txn("t1"), txn("t2", amount=20.0)])])
    upload = plaid_user("u1", [txn("t2", amount=99.0), txn("t3", date="2026-11-02", amount=7.0)])
    tables = parse_upload(json.dumps(upload).encode(), filename="u1.json").tables
    async with profile.db.uow_factory(SqlProfileUnitOfWork)() as uow:
        driver = await data_store._driver_connection(uow.session)
        body = data_store.binary_rows(tables["transactions"], TABLES["transactions"], "up_later")
        columns = [*TABLES["transactions"].names, "upload_id"]
        assert not await data_store._insert_new(driver, "transactions", body, columns)
        assert await driver.fetchval("SELECT count(*) FROM transactions") == 2  # t3 was undone with t2
        await data_store._upsert(driver, "transactions", body, columns)  # the session carries on
        await uow.commit()
    stored = await profile.rows(transactions, "transaction_id")
    assert [(r.transaction_id, r.amount, r.upload_id) for r in stored] == [
        ("t1", 12.5, first["upload_id"]),
        ("t2", 99.0, "up_later"),
        ("t3", 7.0, "up_later"),
    ]


# -- rejected uploads ----------------------------------------------------------------------------------------


def _bad_json() -> dict[str, Any]:
    user = plaid_user("u1")
    user["accounts"][1]["type"] = "spaceship"
    user["transactions"][1]["amount"] = "40"
    user["transactions"][2]["account_id"] = "acc_missing"
    return user


def _bad_batch() -> dict[str, Any]:
    good, bad = batch("u1", "u2")
    bad["transactions"][0]["date"] = "2026-02-30"
    bad["transactions"][2]["pending"] = "no"
    return {"users": [good, bad]}


@pytest.mark.parametrize(
    ("actor", "roles", "request_kwargs", "paths"),
    [
        pytest.param(
            "u1",
            (),
            {"content": json.dumps(_bad_json()).encode(), "headers": {"Content-Type": "application/json"}},
            {"accounts[1].type", "transactions[1].amount", "transactions[2].account_id"},
            id="json",
        ),
        pytest.param(
            "ops",
            ("operator",),
            {"content": json.dumps(_bad_batch()).encode(), "headers": {"Content-Type": "application/json"}},
            {"users[1].transactions[0].date", "users[1].transactions[2].pending"},
            id="batch-with-one-bad-user",
        ),
        pytest.param(
            "u1",
            (),
            {
                "content": to_csv_zip(
                    [
                        plaid_user(
                            "u1", [txn("t1"), txn("t2", amount="lots"), txn("t3", payment_channel="fax")]
                        )
                    ]
                ),
                "headers": {"Content-Type": "application/zip"},
            },
            {"export/transactions.csv:line 3.amount", "export/transactions.csv:line 4.payment_channel"},
            id="csv-zip",
        ),
        pytest.param(
            "u1",
            (),
            {"content": b'{"user_id": "u1", "accounts": [', "headers": {"Content-Type": "application/json"}},
            None,
            id="truncated-json",
        ),
    ],
)
async def test_a_rejected_upload_names_every_problem_and_stores_nothing(
    profile, actor, roles, request_kwargs, paths
):
    await profile.grant("u1", "u2")
    headers = {**request_kwargs["headers"], **profile.as_(actor, *roles)}
    response = await profile.client.post(
        "/api/v1/uploads", content=request_kwargs["content"], headers=headers
    )
    assert await profile.work() == 1

    error = await profile.failure(response, actor, *roles)
    assert error["code"] == "invalid_upload"
    details = error["details"]
    assert all(set(d) == {"field", "reason"} and d["reason"] for d in details)
    if paths is None:
        assert details, "a malformed document is reported too"
    else:
        assert {d["field"] for d in details} == paths
        for path in paths:
            assert path in error["message"]
    await profile.assert_nothing_stored(but_failed_uploads=1)


async def test_the_same_problems_at_the_same_paths_when_the_file_comes_gzip_compressed(profile):
    await profile.grant("u1", "u2")
    plain, compressed = json.dumps(_bad_batch()).encode(), gzip.compress(json.dumps(_bad_batch()).encode())
    ops = profile.as_("ops", "operator")
    sent = [
        await profile.client.post(
            "/api/v1/uploads", content=plain, headers={**ops, "Content-Type": "application/json"}
        ),
        await profile.client.post(
            "/api/v1/uploads",
            content=compressed,
            headers={**ops, "Content-Type": "application/json", "Content-Encoding": "gzip"},
        ),
        await profile.client.post(
            "/api/v1/uploads", files={"file": ("batch.json.gz", compressed, "application/gzip")}, headers=ops
        ),
    ]
    assert await profile.work() == 3
    errors = [await profile.failure(response, "ops", "operator") for response in sent]
    assert errors[0]["code"] == "invalid_upload"
    assert {d["field"] for d in errors[0]["details"]} == {
        "users[1].transactions[0].date",
        "users[1].transactions[2].pending",
    }
    assert errors[1] == errors[0]
    assert errors[2] == errors[0]


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        pytest.param(b"", {"Content-Type": "application/json"}, id="no-bytes"),
        pytest.param(b"  \n\r\n\t\n" * 1000, {"Content-Type": "text/csv"}, id="blank-lines"),
        pytest.param(b"\xef\xbb\xbf\n\n", {}, id="a-byte-order-mark-and-blanks"),
    ],
)
async def test_an_empty_upload_is_refused_422_at_once(profile, content, headers):
    await profile.grant("u1")
    response = await profile.client.post(
        "/api/v1/uploads", content=content, headers={**profile.as_("u1"), **headers}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_upload"
    assert error["details"] == [{"field": "body", "reason": "the upload is empty"}]
    await profile.assert_nothing_stored()

    async def streamed():  # no Content-Length: told as it streams
        yield content[: len(content) // 2]
        yield content[len(content) // 2 :]

    response = await profile.client.post(
        "/api/v1/uploads", content=streamed(), headers={**profile.as_("u1"), **headers}
    )
    assert response.status_code == 422, response.text
    await profile.assert_nothing_stored()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"users": []}, "empty_upload", id="no-users"),
        pytest.param({"user_id": "u1", "accounts": [], "transactions": []}, "empty_upload", id="no-rows"),
    ],
)
async def test_an_upload_that_holds_no_accounts_and_no_transactions_fails_empty_upload(profile, body, code):
    """Telling these from data needs parsing, which is the worker's: they are received, then fail."""
    await profile.grant("u1")
    response = await profile.client.post("/api/v1/uploads", json=body, headers=profile.as_("u1"))
    assert await profile.work() == 1
    error = await profile.failure(response, "u1")
    assert error == {"code": "empty_upload", "message": "the upload holds no accounts and no transactions"}
    await profile.assert_nothing_stored(but_failed_uploads=1)


async def test_a_body_that_is_no_upload_format_is_refused_415(profile):
    await profile.grant("u1")
    for headers in (
        {"Content-Type": "image/png"},
        {"Content-Type": "application/json", "Content-Encoding": "br"},
    ):
        response = await profile.client.post(
            "/api/v1/uploads", content=b"\x89PNG....", headers={**profile.as_("u1"), **headers}
        )
        assert response.status_code == 415, response.text
        assert response.json()["error"]["code"] == "unsupported_media_type"
    await profile.assert_nothing_stored()


@pytest.mark.parametrize(
    ("actor", "roles", "users", "granted", "missing"),
    [
        ("u1", (), ["u1"], [], ["u1"]),
        ("ops", ("operator",), ["u1", "u2", "u3"], ["u1", "u3"], ["u2"]),
    ],
)
async def test_without_consent_an_upload_is_refused_and_nothing_is_stored(
    profile, actor, roles, users, granted, missing
):
    await profile.grant(*granted)
    response = await profile.upload(actor, *roles, users=batch(*users))
    if roles:  # a batch import: whose data it holds is known once it is parsed
        error = await profile.failure(response, actor, *roles)
    else:  # the user's own data: their consent is checked before a byte is read
        assert response.status_code == 403, response.text
        error = response.json()["error"]
    assert error["code"] == "consent_required"
    assert error["details"] == {"user_ids": missing}
    await profile.assert_nothing_stored(but_failed_uploads=1 if roles else 0)


async def test_a_consent_revoked_between_upload_and_parse_fails_the_upload(profile):
    await profile.grant("u1")
    response = await profile.upload("u1", work=False)
    revoked = await profile.client.delete("/api/v1/consent/u1", headers=profile.as_("u1"))
    assert revoked.status_code == 200, revoked.text

    assert await profile.work() == 1
    error = await profile.failure(response, "u1")
    assert (error["code"], error["details"]) == ("consent_required", {"user_ids": ["u1"]})
    await profile.assert_nothing_stored(but_failed_uploads=1)


@pytest.mark.parametrize("users", [["u2"], ["u1", "u2"]])
async def test_a_user_cannot_upload_someone_elses_data(profile, users):
    await profile.grant("u1", "u2")
    response = await profile.upload("u1", users=batch(*users))
    error = await profile.failure(response, "u1")
    assert error["code"] == "forbidden"
    await profile.assert_nothing_stored(but_failed_uploads=1)


async def test_an_upload_over_the_configured_size_is_refused_with_413_and_nothing_stored(
    service_client, data_bucket
):
    client = await service_client(SERVICE, upload_max_bytes=2000, max_request_bytes=4000)
    profile = Profile(client, data_bucket)
    await profile.grant("u1")
    small = json.dumps(plaid_user("u1", [txn("t1")])).encode()
    padded = plaid_user("u1", [txn("t1", name="X" * 1800)])
    medium = json.dumps(padded).encode()  # over upload_max_bytes, under max_request_bytes
    large = json.dumps(plaid_user("u1", [txn("t1", name="X" * 4200)])).encode()
    assert len(small) < 2000 < len(medium) < 4000 - 400 < 4000 < len(large)
    json_headers = {**profile.as_("u1"), "Content-Type": "application/json"}

    for content in (medium, large):
        response = await profile.client.post("/api/v1/uploads", content=content, headers=json_headers)
        assert response.status_code == 413, (len(content), response.text)
        assert response.json()["error"]["code"] == "payload_too_large"
    multipart = await profile.client.post(
        "/api/v1/uploads",
        files={"file": ("plaid.json", medium, "application/json")},
        headers=profile.as_("u1"),
    )
    assert multipart.status_code == 413, multipart.text
    assert multipart.json()["error"]["code"] == "payload_too_large"
    assert "2000" in multipart.json()["error"]["message"]
    await profile.assert_nothing_stored()

    async def endless():  # a body that never ends (chunked, no length): cut off at the limit
        while True:
            yield b"[" * 512

    response = await profile.client.post("/api/v1/uploads", content=endless(), headers=json_headers)
    assert response.status_code == 413, response.text
    await profile.assert_nothing_stored()

    accepted = await profile.client.post("/api/v1/uploads", content=small, headers=json_headers)
    assert accepted.status_code == 202, accepted.text


# -- reading an upload ---------------------------------------------------------------------------------------


async def test_the_uploader_and_operators_may_read_an_upload_and_nobody_else(profile):
    await profile.grant("u1")
    upload_id = (await profile.ingested("u1"))["upload_id"]
    cases = [(None, (), 401), ("u1", ("user",), 200), ("u2", ("user",), 404)]
    cases += [("ops", ("operator",), 200), ("root", ("admin",), 200)]
    for actor, roles, expected in cases:
        headers = profile.as_(actor, *roles) if actor else {}
        response = await profile.client.get(f"/api/v1/uploads/{upload_id}", headers=headers)
        assert response.status_code == expected, (actor, response.text)
        if expected == 200:
            assert response.json()["upload_id"] == upload_id
            assert response.json()["users"] == [{"user_id": "u1", "stage": "ingested", "reason": None}]
        if expected == 404:  # the same answer as for an upload that does not exist
            assert response.json()["error"]["code"] == "not_found"
    missing = await profile.client.get("/api/v1/uploads/up_missing", headers=profile.as_("ops", "operator"))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


# -- progress through the pipeline ---------------------------------------------------------------------------


def assigned(upload_id: str | None, user_id: str) -> PersonaAssigned:
    return PersonaAssigned(
        user_id=user_id,
        upload_id=upload_id,
        as_of=date(2026, 11, 5),
        rule_set_version="v1",
        personas={"30d": "general_wellness", "180d": "general_wellness"},
        details=ClaimCheck(bucket="b", key=f"details/{user_id}.json", sha256="0" * 64, size_bytes=2),
    )


def recommended(upload_id: str, user_id: str) -> RecommendationsGenerated:
    return RecommendationsGenerated(
        user_id=user_id, upload_id=upload_id, recommendation_ids=["r1"], persona="general_wellness"
    )


def failed(upload_id: str, user_id: str, reason: str = "consent_required") -> UploadFailed:
    return UploadFailed(upload_id=upload_id, user_id=user_id, stage="analysis", reason=reason)


async def test_progress_events_move_an_upload_through_its_stages(profile):
    await profile.grant("u1")
    upload_id = (await profile.ingested("u1"))["upload_id"]

    await profile.progress(assigned(upload_id, "u1"))
    record = await profile.status(upload_id, "u1", "user")
    assert record["status"] == "analyzed"
    assert record["users"] == [{"user_id": "u1", "stage": "analyzed", "reason": None}]
    assert record["updated_at"] > record["created_at"]

    await profile.progress(recommended(upload_id, "u1"))
    assert (await profile.status(upload_id))["status"] == "recommended"

    # Late or repeated events for earlier stages never move it back.
    await profile.progress(assigned(upload_id, "u1"))
    record = await profile.status(upload_id)
    assert record["status"] == "recommended"
    assert record["users"][0]["stage"] == "recommended"


async def test_a_failure_is_recorded_with_its_reason_and_is_final(profile):
    await profile.grant("u1")
    upload_id = (await profile.ingested("u1"))["upload_id"]

    await profile.progress(failed(upload_id, "u1", "no_transactions"))
    record = await profile.status(upload_id, "u1", "user")
    assert record["status"] == "failed"
    assert record["users"] == [{"user_id": "u1", "stage": "failed", "reason": "no_transactions"}]
    assert record["error"] == {
        "code": "user_failed",
        "failed_users": [{"user_id": "u1", "reason": "no_transactions"}],
    }

    for late in (assigned(upload_id, "u1"), recommended(upload_id, "u1")):
        await profile.progress(late)
    record = await profile.status(upload_id)
    assert record["status"] == "failed"
    assert record["users"][0]["reason"] == "no_transactions"


async def test_out_of_order_events_never_move_a_stage_backwards(profile):
    await profile.grant("u1")
    upload_id = (await profile.ingested("u1"))["upload_id"]

    await profile.progress(recommended(upload_id, "u1"))  # overtook persona.assigned on the bus
    await profile.progress(assigned(upload_id, "u1"))
    record = await profile.status(upload_id)
    assert record["status"] == "recommended"
    assert record["users"] == [{"user_id": "u1", "stage": "recommended", "reason": None}]


async def test_a_batch_is_as_far_as_its_slowest_user(profile):
    await profile.grant("u1", "u2")
    upload_id = (await profile.ingested("ops", "operator", users=batch("u1", "u2")))["upload_id"]

    await profile.progress(assigned(upload_id, "u1"))
    record = await profile.status(upload_id)
    assert record["status"] == "ingested"
    assert [(u["user_id"], u["stage"]) for u in record["users"]] == [("u1", "analyzed"), ("u2", "ingested")]

    await profile.progress(failed(upload_id, "u2"))
    record = await profile.status(upload_id)
    assert record["status"] == "analyzed"
    assert record["error"] == {
        "code": "user_failed",
        "failed_users": [{"user_id": "u2", "reason": "consent_required"}],
    }

    await profile.progress(recommended(upload_id, "u1"))
    assert (await profile.status(upload_id))["status"] == "recommended"
    # Events without an upload, or for another upload, change nothing.
    await profile.progress(assigned(None, "u2"))
    await profile.progress(assigned("up_unknown", "u2"))
    record = await profile.status(upload_id)
    assert [(u["user_id"], u["stage"]) for u in record["users"]] == [("u1", "recommended"), ("u2", "failed")]


async def test_one_batch_announcement_moves_each_of_its_users_forward_on_postgresql(profile):
    await profile.grant("u1", "u2", "u3")
    upload_id = (await profile.ingested("ops", "operator", users=batch("u1", "u2", "u3")))["upload_id"]
    await profile.progress(recommended(upload_id, "u2"))  # overtook the announcement on the bus

    # u9 is not of this upload; u1's per-user event (published before the upgrade) came first
    await profile.progress(assigned(upload_id, "u1"))
    await profile.progress(assigned_together([assigned(upload_id, u) for u in ("u1", "u2", "u3", "u9")]))

    record = await profile.status(upload_id)
    assert record["status"] == "analyzed"
    assert [(u["user_id"], u["stage"]) for u in record["users"]] == [
        ("u1", "analyzed"),
        ("u2", "recommended"),
        ("u3", "analyzed"),
    ]
    await profile.progress(assigned_together([assigned(None, "u3")]))  # a re-score: no upload
    assert (await profile.status(upload_id))["users"] == record["users"]


def recommended_together(upload_id: str | None, *user_ids: str) -> RecommendationsBatchGenerated:
    """The users' recommendations in one ``recommendations.batch_generated``, as the recommender
    announces a batch (the review items' claims play no part here)."""
    return RecommendationsBatchGenerated(
        upload_id=upload_id,
        generated=[
            GeneratedForUser(
                user_id=u, recommendation_ids=[f"r-{u}"], persona="general_wellness", items_claim=None
            )
            for u in user_ids
        ],
    )


async def test_one_batch_of_recommendations_moves_each_of_its_users_to_recommended_on_postgresql(profile):
    await profile.grant("u1", "u2", "u3")
    upload_id = (await profile.ingested("ops", "operator", users=batch("u1", "u2", "u3")))["upload_id"]
    await profile.progress(assigned_together([assigned(upload_id, u) for u in ("u1", "u2", "u3")]))
    await profile.progress(failed(upload_id, "u3"))
    assert "recommendations.batch_generated" in profile.handlers

    await profile.progress(recommended_together(upload_id, "u1", "u2", "u3", "u9"))  # u9: not of it

    record = await profile.status(upload_id)
    assert record["status"] == "recommended"
    assert [(u["user_id"], u["stage"]) for u in record["users"]] == [
        ("u1", "recommended"),
        ("u2", "recommended"),
        ("u3", "failed"),
    ]
    await profile.progress(assigned_together([assigned(upload_id, "u1")]))  # late: never backwards
    await profile.progress(recommended_together(None, "u2"))  # no upload: nothing to follow
    assert (await profile.status(upload_id))["users"] == record["users"]


# -- the whole loop, through the real bus -------------------------------------------------------------------


async def test_an_upload_is_analyzed_downstream_and_its_status_follows_through_the_real_bus(
    service_client, migrated, topology
):
    """received → the worker's upload job (NOTIFY) ingests it → profile outbox → SNS/SQS → features
    analyses the snapshots → personas.assigned → profile records it."""
    profile = Profile(await service_client(SERVICE), topology.buckets["data"])
    settings = profile.platform.settings
    wiring = SERVICE.bootstrap(profile.platform)
    features = FEATURES.platform(await migrated(FEATURES))
    features_wiring = FEATURES.bootstrap(features)
    user, label = build_user(4)
    user_id = user["user_id"]
    aws = Aws(settings)
    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        workers = [
            await relay_for(settings, profile.db, sns),
            await consumer_for(
                features.settings,
                features.database,
                sqs,
                features_wiring.event_handlers,
                features_wiring.unit_of_work,
            ),
            await relay_for(features.settings, features.database, sns),
            await consumer_for(settings, profile.db, sqs, wiring.event_handlers, wiring.unit_of_work),
            profile.jobs,  # woken by the upload's NOTIFY
        ]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            await profile.grant(user_id)
            lookup = features_wiring.consent
            assert lookup is not None
            assert await eventually(lambda: lookup.has_current_consent(user_id), timeout=20)

            response = await profile.upload(
                user_id, fmt="jsonl", users=[user], headers={"X-Correlation-ID": "corr-loop"}
            )
            assert response.status_code == 202, response.text
            upload_id = response.json()["upload_id"]

            async def analyzed() -> dict[str, Any] | None:
                record = await profile.status(upload_id)
                return record if record["status"] not in ("received", "ingested") else None

            record = await eventually(analyzed, timeout=30)
            assert record is not None, "the upload never got past 'received' and 'ingested'"
            assert record["status"] == "analyzed"
            assert record["users"] == [{"user_id": user_id, "stage": "analyzed", "reason": None}]
        finally:
            for worker in workers:
                worker.stop()
            await asyncio.gather(*tasks)
    async with features.database.engine.connect() as conn:
        rows = (await conn.execute(select(features_tables.outbox.c.payload))).all()
    [event] = [r.payload for r in rows if r.payload["type"] == "personas.assigned"]
    assert event["correlation_id"] == "corr-loop"  # one id from the request to the last event
    assert event["data"]["upload_id"] == upload_id
    [one] = event["data"]["assignments"]
    assert (one["user_id"], one["personas"]["180d"]) == (user_id, label["persona"])
    assert label["persona"] == "high_utilization"
    await features.close()


# -- merged accounts ---------------------------------------------------------------------------------------


async def test_a_merge_moves_consent_uploads_data_and_devices_to_the_target_on_postgresql(profile):
    await profile.grant("old", "other")
    await profile.grant("new")
    own = await profile.upload("old", users=[plaid_user("old", [txn("t1"), txn("t2", amount=20.0)])])
    mine = await profile.upload("new", users=[plaid_user("new", [txn("t1", amount=99.0), txn("t9")])])
    assert (own.status_code, mine.status_code) == (202, 202)
    own = own.json()
    imported = await profile.upload("ops", "operator", users=batch("old", "new", "other"))
    assert imported.status_code == 202, imported.text
    batch_id = imported.json()["upload_id"]
    await profile.progress(assigned(batch_id, "new"))
    await profile.progress(assigned(batch_id, "other"))
    await profile.progress(failed(batch_id, "old", "no_transactions"))
    assert (await profile.status(batch_id))["error"] is not None
    async with profile.db.uow_factory(SqlProfileUnitOfWork)() as uow:
        await uow.push_devices.register(PushDevice("tok-old", "old", "android"))
        await uow.commit()
    new_consent = (await profile.client.get("/api/v1/profile/new", headers=profile.as_("new"))).json()[
        "consent"
    ]
    outbox_before = await profile.outbox()

    merge = new_event(UserMerged(source_user_id="old", target_user_id="new"))
    handler = profile.handlers["user.merged"]

    async def deliver() -> None:
        async with profile.db.uow_factory(SqlProfileUnitOfWork)() as uow:
            await handler(merge, parse_data(merge), uow)
            await uow.commit()

    await deliver()

    body = (await profile.client.get("/api/v1/profile/new", headers=profile.as_("new"))).json()
    assert body["consent"] == new_consent  # the target's current consent stays current
    assert body["uploads"] == 3
    gone = await profile.client.get("/api/v1/profile/old", headers=profile.as_("old"))
    assert gone.status_code == 404
    rows = await profile.rows(consents, "granted_at")
    assert {r.user_id for r in rows} == {"new", "other"}
    theirs = [r for r in rows if r.user_id == "new"]
    assert len(theirs) == 2
    assert [r.consent_id for r in theirs if r.revoked_at is None] == [new_consent["consent_id"]]
    [revoked] = [r for r in theirs if r.revoked_at is not None]
    assert revoked.revoked_at == merge.occurred_at

    record = await profile.status(batch_id)
    assert [u["user_id"] for u in record["users"]] == ["new", "other"]
    assert (record["status"], record["error"]) == ("analyzed", None)  # without the source's failure
    stored = {r.upload_id: r for r in await profile.rows(uploads, "upload_id")}
    assert stored[batch_id].user_ids == ["new", "other"]
    assert (stored[own["upload_id"]].uploader_id, stored[own["upload_id"]].user_ids) == ("new", ["new"])
    assert [u["user_id"] for u in (await profile.status(own["upload_id"], "new", "user"))["users"]] == ["new"]
    assert [r.user_id for r in await profile.rows(upload_users, "upload_id") if r.user_id == "old"] == []

    moved = {(r.user_id, r.transaction_id): r.amount for r in await profile.rows(transactions, "user_id")}
    assert {k: v for k, v in moved.items() if k[0] != "other"} == {
        ("new", "t1"): 99.0,  # the target's row is kept
        ("new", "t2"): 20.0,
        ("new", "t9"): 12.5,
        ("new", "old-t1"): 12.5,
        ("new", "old-t2"): -40.0,
        ("new", "old-t3"): -2500.0,
        ("new", "new-t1"): 12.5,
        ("new", "new-t2"): -40.0,
        ("new", "new-t3"): -2500.0,
    }
    for table in (accounts, credit_liabilities):
        assert {r.user_id for r in await profile.rows(table, "user_id")} == {"new", "other"}
    assert [(r.token, r.user_id) for r in await profile.rows(push_devices, "token")] == [("tok-old", "new")]
    assert [r.user_id for r in await profile.rows(profiles, "user_id")] == ["new", "other"]
    assert await profile.outbox() == outbox_before  # nothing published

    async def everything() -> list[Any]:
        tables = (profiles, consents, uploads, upload_users, accounts, transactions, credit_liabilities)
        return [sorted(map(tuple, await profile.rows(t, t.primary_key.columns.keys()[0]))) for t in tables]

    before = await everything()
    await deliver()  # a redelivery changes nothing
    assert await everything() == before


async def test_a_users_upload_status_answered_from_memory_follows_every_stage(profile):
    platform = profile.platform
    dsn = asyncpg_dsn(platform.settings.database_url.get_secret_value())
    listener = UserChangeListener(dsn, platform.database.schema, platform.read_cache)
    await listener.start()  # as the API's lifespan does
    platform.database.commit_watcher = listener  # each write below is in the cache when its commit returns
    cache = platform.read_cache
    try:
        await profile.grant("u1")
        waiting = (await profile.upload("u1", work=False)).json()["upload_id"]
        misses = cache.misses
        for _ in range(2):  # names nobody yet (its failure would notify nobody): never remembered
            assert (await profile.status(waiting, "u1", "user"))["status"] == "received"
        assert cache.misses == misses + 2
        await profile.work()
        assert (await profile.status(waiting, "u1", "user"))["status"] == "ingested"
        hits = cache.hits
        assert (await profile.status(waiting, "u1", "user"))["status"] == "ingested"
        assert cache.hits == hits + 1
        await profile.progress(assigned(waiting, "u1"))  # the worker's write
        assert (await profile.status(waiting, "u1", "user"))["status"] == "analyzed"
    finally:
        platform.database.commit_watcher = None
        await listener.stop()
