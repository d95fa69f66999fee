"""bcrypt (cost 12 by default) through libpass, in a thread pool behind a bounded semaphore so hashing
never starves the event loop; and the common-password list."""

from __future__ import annotations

import asyncio
from pathlib import Path

from passlib.hash import bcrypt

from spendsense_auth.handlers.ports import PasswordHasher

COMMON_PASSWORDS = Path(__file__).resolve().parents[1] / "data" / "common-passwords.txt"
MAX_BYTES = 72  # bcrypt's limit


def load_common_passwords(path: Path | None = None) -> list[str]:
    lines = (path or COMMON_PASSWORDS).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


class BcryptHasher(PasswordHasher):
    def __init__(self, rounds: int = 12, concurrency: int = 4):
        self._bcrypt = bcrypt.using(rounds=rounds)
        self._slots = asyncio.BoundedSemaphore(concurrency)
        # What an unknown account is verified against: same cost, so the same time.
        self._dummy = self._bcrypt.hash("not-a-real-password-0")

    async def _run(self, fn: object, *args: str) -> object:
        async with self._slots:
            return await asyncio.to_thread(fn, *args)  # type: ignore[arg-type]

    async def hash(self, password: str) -> str:
        return str(await self._run(self._bcrypt.hash, password))

    async def verify(self, password: str, hashed: str | None) -> bool:
        if len(password.encode()) > MAX_BYTES:  # never accepted at registration; still spend the time
            password, hashed = "x", None
        ok = bool(await self._run(self._bcrypt.verify, password, hashed or self._dummy))
        return ok and hashed is not None
