"""The CLI's sign-in waits out a login limit once (Retry-After), and only once, and only a short one."""

from __future__ import annotations

import httpx
import pytest

from spendsense_cli import accounts

SIGNED_IN = {
    "access_token": "a",
    "refresh_token": "r",
    "user": {"id": "u1", "roles": ["admin"]},
}


def client_answering(*answers: httpx.Response) -> tuple[httpx.Client, list[httpx.Request]]:
    sent: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return queue.pop(0)

    return httpx.Client(base_url="http://auth", transport=httpx.MockTransport(handle)), sent


def limited(retry_after: str) -> httpx.Response:
    body = {"error": {"code": "rate_limited", "message": "too many attempts; try again later"}}
    return httpx.Response(429, json=body, headers={"retry-after": retry_after})


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(accounts.time, "sleep", waits.append)
    return waits


def test_a_limited_sign_in_waits_retry_after_then_signs_in(slept: list[float], capsys) -> None:
    client, sent = client_answering(limited("7"), httpx.Response(200, json=SIGNED_IN))
    account = accounts.login(client, "admin@example.com", "pw")
    assert account.user_id == "u1"
    assert len(sent) == 2
    assert slept == [7]
    assert "rate limited: trying again in 7 s" in capsys.readouterr().err


def test_limited_again_and_again_fails_once_the_window_is_waited(slept: list[float]) -> None:
    client, sent = client_answering(limited("25"), limited("25"), limited("25"))
    with pytest.raises(accounts.SignInFailed, match="429"):
        accounts.login(client, "admin@example.com", "pw")
    assert len(sent) == 3
    assert slept == [25, 25]  # a third wait would pass the 60 s window


def test_each_limit_is_waited_in_turn(slept: list[float]) -> None:
    client, sent = client_answering(limited("5"), limited("9"), httpx.Response(200, json=SIGNED_IN))
    assert accounts.login(client, "admin@example.com", "pw").user_id == "u1"
    assert slept == [5, 9]
    assert len(sent) == 3


@pytest.mark.parametrize("retry_after", ["3600", "soon", ""])
def test_a_long_or_unreadable_retry_after_is_not_waited_for(slept: list[float], retry_after: str) -> None:
    client, sent = client_answering(limited(retry_after))
    with pytest.raises(accounts.SignInFailed, match="429"):
        accounts.login(client, "admin@example.com", "pw")
    assert len(sent) == 1
    assert slept == []


def test_a_wrong_password_is_not_tried_again(slept: list[float]) -> None:
    client, sent = client_answering(httpx.Response(401, json={"error": {"code": "invalid_credentials"}}))
    with pytest.raises(accounts.SignInFailed, match="401"):
        accounts.login(client, "admin@example.com", "pw")
    assert len(sent) == 1
    assert slept == []
