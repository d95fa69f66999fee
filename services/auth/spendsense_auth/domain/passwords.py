"""The password policy (SPEC §9): at least 12 characters with an upper-case letter, a lower-case
letter, a digit and a symbol, at most 72 bytes (bcrypt's limit), and not a common password — compared
lower-cased, and again with its digits and symbols stripped, so "Password123!!" is refused."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from spendsense_auth.domain.accounts import AuthError

MIN_LENGTH = 12
MAX_BYTES = 72

RULES: dict[str, str] = {
    "min_length": f"at least {MIN_LENGTH} characters",
    "max_length": f"at most {MAX_BYTES} bytes",
    "uppercase": "an upper-case letter",
    "lowercase": "a lower-case letter",
    "digit": "a digit",
    "symbol": "a symbol (not a letter, digit or space)",
    "common": "not a common password",
}

_NOT_LETTERS = re.compile(r"[^a-z]+")


def common_forms(password: str) -> set[str]:
    """The forms compared with the list: lower-cased, and its letters alone (digits/symbols stripped)."""
    lowered = password.lower()
    forms = {lowered, lowered.strip()}
    letters = _NOT_LETTERS.sub("", lowered)
    if letters:
        forms.add(letters)
    return forms


@dataclass(frozen=True)
class PasswordPolicy:
    common_passwords: frozenset[str] = field(default_factory=frozenset)
    min_length: int = MIN_LENGTH

    @classmethod
    def with_common(cls, passwords: Iterable[str]) -> PasswordPolicy:
        return cls(frozenset(p.strip().lower() for p in passwords if p.strip()))

    def failed_rules(self, password: str) -> list[str]:
        """Every rule the password breaks (empty: acceptable), in the order of ``RULES``."""
        failed = []
        if len(password) < self.min_length:
            failed.append("min_length")
        if len(password.encode()) > MAX_BYTES:
            failed.append("max_length")
        if not any(c.isupper() for c in password):
            failed.append("uppercase")
        if not any(c.islower() for c in password):
            failed.append("lowercase")
        if not any(c.isdigit() for c in password):
            failed.append("digit")
        if not any(not c.isalnum() and not c.isspace() for c in password):
            failed.append("symbol")
        if common_forms(password) & self.common_passwords:
            failed.append("common")
        return failed

    def check(self, password: str, field_name: str = "password") -> None:
        """AuthError 422 ``weak_password`` naming every failed rule."""
        failed = self.failed_rules(password)
        if failed:
            details = [
                {"field": field_name, "rule": rule, "reason": f"needs {RULES[rule]}"} for rule in failed
            ]
            message = f"{field_name}: " + "; ".join(f"needs {RULES[rule]}" for rule in failed)
            raise AuthError(422, "weak_password", message, details=details)
