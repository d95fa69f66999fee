"""An upload's progress: each user moves through the stages; the upload is as far as its slowest user."""

from __future__ import annotations

from typing import Any

STAGES = ("received", "ingested", "analyzed", "recommended")
FAILED = "failed"


def advances(current: str, new: str) -> bool:
    """Stages only move forward (events may arrive out of order); a failure is final."""
    if current == FAILED:
        return False
    return new == FAILED or STAGES.index(new) > STAGES.index(current)


def upload_status(users: list[tuple[str, str, str | None]]) -> tuple[str, dict[str, Any] | None]:
    """(user_id, stage, reason) per user → the upload's status and, when users failed, the error."""
    failed = [{"user_id": u, "reason": r} for u, s, r in users if s == FAILED]
    active = [s for _, s, _ in users if s != FAILED]
    status = min(active, key=STAGES.index) if active else FAILED
    error = {"code": "user_failed", "failed_users": failed} if failed else None
    return status, error
