"""Reads back the SMS the AWS emulator (moto, server mode) accepted: ``GET /moto-api/data.json`` lists
every recorded model instance, among them SNS's ``SMS`` (``phone_number``, ``message``)."""

from __future__ import annotations

import re

import httpx


async def sent_sms(endpoint: str, phone: str) -> list[str]:
    """The messages sent to ``phone``, oldest first."""
    async with httpx.AsyncClient(base_url=endpoint, timeout=10) as client:
        response = await client.get("/moto-api/data.json")
        response.raise_for_status()
    messages = response.json().get("sns", {}).get("SMS", [])
    return [m["message"] for m in messages if m.get("phone_number") == phone]


async def last_code(endpoint: str, phone: str) -> str:
    messages = await sent_sms(endpoint, phone)
    assert messages, f"no SMS was sent to {phone}"
    found = re.search(r"code is (\d{6})\.", messages[-1])
    assert found, messages[-1]
    return found.group(1)
