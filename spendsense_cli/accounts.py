"""Signing up and in through the gateway, as any client does: the demo, the smoke flow and benchmarks
use real accounts (`spendsense token` stays a development tool)."""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Account:
    user_id: str
    email: str
    password: str
    access_token: str
    refresh_token: str
    roles: tuple[str, ...]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class SignInFailed(RuntimeError):
    pass


def new_password() -> str:
    """A password the policy accepts: upper, lower, digit and symbol, never a common one."""
    return f"Ss-{secrets.token_urlsafe(12)}-4b!"


def _account(response: httpx.Response, email: str, password: str, action: str) -> Account:
    if not response.is_success:
        raise SignInFailed(f"{action} {email}: {response.status_code} {response.text[:300]}")
    body = response.json()
    return Account(
        user_id=body["user"]["id"],
        email=email,
        password=password,
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        roles=tuple(body["user"]["roles"]),
    )


def register(client: httpx.Client, email: str, password: str, username: str | None = None) -> Account:
    body = {"email": email, "password": password} | ({"username": username} if username else {})
    return _account(client.post("/api/v1/auth/register", json=body), email, password, "register")


LOGIN_WAIT_MAX_S = 60  # the login limits' window: a longer Retry-After is not waited for


def login(client: httpx.Client, email: str, password: str) -> Account:
    """Signs in; limited (429: the account's or this address's attempts this minute), waits the
    ``Retry-After`` (up to the window in all), saying so, rather than failing a command an operator just
    started."""
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    waited_s = 0
    # Two limits apply (the address's and the account's), each with its own Retry-After: wait for each in
    # turn, for at most the window in all.
    while (wait_s := _retry_after_s(response)) is not None and waited_s + wait_s <= LOGIN_WAIT_MAX_S:
        print(f"sign-in of {email} is rate limited: trying again in {wait_s} s", file=sys.stderr, flush=True)
        time.sleep(wait_s)
        waited_s += wait_s
        response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return _account(response, email, password, "login")


def _retry_after_s(response: httpx.Response) -> int | None:
    if response.status_code != 429:
        return None
    value = response.headers.get("retry-after", "")
    return int(value) if value.isdigit() else None


def register_many(
    gateway: str,
    emails: Iterable[str],
    progress: Callable[[int], None] = lambda done: None,
    concurrency: int = 4,
) -> dict[str, Account]:
    """Sign up every address, a few at a time (bcrypt is the cost); accounts by email."""
    local = threading.local()

    def sign_up(email: str) -> Account:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=gateway, timeout=60)
        return register(local.client, email, new_password())

    done: dict[str, Account] = {}
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for account in _in_completion_order(pool, sign_up, list(emails)):
            done[account.email] = account
            progress(len(done))
    return done


def _in_completion_order(
    pool: ThreadPoolExecutor, work: Callable[[str], Account], items: list[str]
) -> Iterable[Account]:
    futures = [pool.submit(work, item) for item in items]
    for future in as_completed(futures):
        yield future.result()
