"""What the e2e modules share: the embedded stack (``spendsense up`` on free ports, see ``conftest.py``)
and small helpers to sign users in through its gateway.

Loaded by path (``load_beside``) from ``conftest.py`` and the test modules: under pytest's importlib
mode the tests are not an importable package.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from spendsense_cli.stack import StackConfig
from spendsense_shared.embedded.servers import port_open

SERVICES = ("auth", "profile", "features", "recommender", "operator")
PASSWORD = "Correct-Horse-9-Battery"

T = TypeVar("T")


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands out to outgoing connections: blocks stay below it, where no
    client socket of another process can take a port between our check and the server's bind."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_block(size: int) -> int:
    top = max(_ephemeral_floor(), 20000 + 10 * size) - size - 1
    for _ in range(200):
        base = random.randint(20000, top)
        if not any(port_open(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free port block")


def cli(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``spendsense …`` as a user runs it: this process's environment (plus ``env``) passed through."""
    return subprocess.run(
        [sys.executable, "-m", "spendsense_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


class Stack:
    def __init__(self, state_dir: Path, base: int):
        self.state_dir = state_dir
        self.gateway = f"http://127.0.0.1:{base}"
        self.args = [
            "--state-dir",
            str(state_dir),
            "--gateway-port",
            str(base),
            "--service-base-port",
            str(base + 1),
            "--postgres-port",
            str(base + 6),
            "--redis-port",
            str(base + 7),
            "--aws-port",
            str(base + 8),
        ]
        self.up_seconds = 0.0
        self.up_result: subprocess.CompletedProcess[str] | None = None
        self.providers: Any = None  # the local OAuth providers the auth service was pointed at

    def manifest(self) -> dict:
        return json.loads((self.state_dir / "stack.json").read_text())

    @property
    def aws(self) -> str:
        """The AWS emulator's endpoint (moto), from the stack manifest."""
        return str(self.manifest()["urls"]["aws"])

    def admin_credentials(self) -> tuple[str, str]:
        """The bootstrap admin: from the environment, else kept in ``<state-dir>/admin.json``."""
        return StackConfig(state_dir=self.state_dir).admin_credentials()

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = bearer(token) if token else {}
        return httpx.Client(base_url=self.gateway, headers=headers, timeout=30, **kwargs)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique_email(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def register(gateway: str, email: str | None = None, password: str = PASSWORD, **extra: Any) -> dict:
    """Sign a new user up through the gateway; the SPEC §9 token response."""
    response = httpx.post(
        f"{gateway}/api/v1/auth/register",
        json={"email": email or unique_email(), "password": password, **extra},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def login(gateway: str, email: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(f"{gateway}/api/v1/auth/login", json={"email": email, "password": password}, timeout=30)


def admin_login(stack: Stack) -> httpx.Response:
    """The bootstrap admin's sign-in. Every module of the session signs in as that one account (10
    attempts a minute, the shipped limit), so a limited sign-in waits its Retry-After once."""
    signed_in = login(stack.gateway, *stack.admin_credentials())
    for _ in range(3):  # the address's limit and the account's, each with its own Retry-After
        if signed_in.status_code != 429:
            break
        time.sleep(int(signed_in.headers.get("retry-after", "1")))
        signed_in = login(stack.gateway, *stack.admin_credentials())
    return signed_in


def sent_sms(aws: str, phone: str) -> list[str]:
    """The SMS the AWS emulator (moto) accepted for ``phone``, oldest first."""
    response = httpx.get(f"{aws}/moto-api/data.json", timeout=10)
    response.raise_for_status()
    messages = response.json().get("sns", {}).get("SMS", [])
    return [m["message"] for m in messages if m.get("phone_number") == phone]


def pushes(aws: str, token: str) -> list[str]:
    """The push messages the AWS emulator (moto) accepted for the device ``token``, oldest first."""
    response = httpx.get(f"{aws}/moto-api/data.json", timeout=10)
    response.raise_for_status()
    endpoints = response.json().get("sns", {}).get("PlatformEndpoint", [])
    return [m for e in endpoints if e.get("token") == token for m in e.get("messages", {}).values()]


def last_code(aws: str, phone: str) -> str:
    messages = sent_sms(aws, phone)
    assert messages, f"no SMS was sent to {phone}"
    found = re.search(r"code is (\d{6})\.", messages[-1])
    assert found, messages[-1]
    return found.group(1)


def a_number() -> str:
    """A valid US number, different in each test (the emulator's SMS log is shared)."""
    return f"+1415555{random.randrange(10**4):04d}"


def wait_for(probe: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.5) -> T:
    """Poll ``probe`` until it returns something other than None: a readiness wait, not a benchmark.
    Asks again after 50 ms at first, backing off to ``interval_s``."""
    deadline = time.monotonic() + timeout_s
    delay = min(0.05, interval_s)
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(delay)
        delay = min(interval_s, delay * 1.5)


def card_user(user_id: str) -> dict:
    """A user whose Visa is at 68 % utilization: high_utilization in both windows."""
    end = date(2026, 10, 31)
    transactions = []
    for month in range(6):
        pay_day = end - timedelta(days=30 * month + 3)
        transactions.append(
            {
                "transaction_id": f"{user_id}-pay-{month}",
                "account_id": "chk",
                "date": pay_day.isoformat(),
                "amount": -3200.0,
                "iso_currency_code": "USD",
                "name": "ACME CORP PAYROLL",
                "payment_channel": "other",
                "personal_finance_category": {"primary": "INCOME", "detailed": "INCOME_WAGES"},
                "pending": False,
            }
        )
        transactions.append(
            {
                "transaction_id": f"{user_id}-groc-{month}",
                "account_id": "visa",
                "date": (pay_day - timedelta(days=5)).isoformat(),
                "amount": 84.12 + month,
                "iso_currency_code": "USD",
                "name": "WHOLE FOODS",
                "merchant_name": "Whole Foods",
                "payment_channel": "in store",
                "personal_finance_category": {
                    "primary": "FOOD_AND_DRINK",
                    "detailed": "FOOD_AND_DRINK_GROCERIES",
                },
                "pending": False,
            }
        )
    return {
        "user_id": user_id,
        "accounts": [
            {
                "account_id": "chk",
                "name": "Checking",
                "type": "depository",
                "subtype": "checking",
                "holder_category": "individual",
                "mask": "1111",
                "balances": {
                    "available": 2500.0,
                    "current": 2500.0,
                    "limit": None,
                    "iso_currency_code": "USD",
                },
            },
            {
                "account_id": "visa",
                "name": "Visa Signature",
                "type": "credit",
                "subtype": "credit card",
                "holder_category": "individual",
                "mask": "4523",
                "balances": {
                    "available": 1600.0,
                    "current": 3400.0,
                    "limit": 5000.0,
                    "iso_currency_code": "USD",
                },
            },
        ],
        "transactions": transactions,
        "liabilities": {
            "credit": [
                {
                    "account_id": "visa",
                    "aprs": [
                        {
                            "apr_percentage": 24.99,
                            "apr_type": "purchase_apr",
                            "balance_subject_to_apr": 3400.0,
                            "interest_charge_amount": 61.2,
                        }
                    ],
                    "is_overdue": False,
                    "last_payment_amount": 100.0,
                    "last_payment_date": "2026-10-15",
                    "last_statement_balance": 3400.0,
                    "last_statement_issue_date": "2026-10-10",
                    "minimum_payment_amount": 100.0,
                    "next_payment_due_date": "2026-11-05",
                }
            ],
            "mortgage": [],
            "student": [],
        },
    }


# Readiness waits, not benchmarks: generous enough for a loaded CI machine.
PIPELINE_WAIT_S = 180
