"""An in-memory :class:`~spendsense_shared.claimed_lines.ClaimedLinesRepository` for unit tests."""

from __future__ import annotations

from spendsense_shared.claimed_lines import ClaimedLinesRepository


class InMemoryClaimedLines(ClaimedLinesRepository):
    def __init__(self) -> None:
        self.rows: set[tuple[str, str, str]] = set()  # (user id, object key, report user id)

    async def remember(self, held: list[tuple[str, str]]) -> None:
        self.rows |= {(user_id, key, user_id) for user_id, key in held}

    async def held_for(self, user_id: str) -> dict[str, set[str]]:
        held: dict[str, set[str]] = {}
        for user, key, report_user_id in self.rows:
            if user == user_id:
                held.setdefault(key, set()).add(report_user_id)
        return held

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        moved = {r for r in self.rows if r[0] == source_user_id}
        self.rows = (self.rows - moved) | {(target_user_id, key, report) for _, key, report in moved}

    async def erase_user(self, user_id: str) -> None:
        self.rows = {r for r in self.rows if r[0] != user_id}
