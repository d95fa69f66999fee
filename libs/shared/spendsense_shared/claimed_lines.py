"""Which batch objects of the data bucket hold a line of each user's data (the claim checks of a batch
event: :func:`spendsense_shared.messaging.claim_check.check_in_batch`), so an erasure can blank those
lines (:func:`~spendsense_shared.messaging.claim_check.blank_out`): the objects' keys name no user.

The port, for the handlers; its table and SQL are in :mod:`spendsense_shared.claimed_lines_store`, an
in-memory one for unit tests in :mod:`spendsense_shared.testing.claimed_lines`."""

from __future__ import annotations

import abc


class ClaimedLinesRepository(abc.ABC):
    """Per user, the objects holding their lines, and whose lines there are theirs: the user's own, and
    those of accounts merged into theirs (each line names the user it was written for)."""

    @abc.abstractmethod
    async def remember(self, held: list[tuple[str, str]]) -> None:
        """Each ``(user id, object key)``: the object holds a line written for the user."""

    @abc.abstractmethod
    async def held_for(self, user_id: str) -> dict[str, set[str]]:
        """Object key → the user ids the lines there that are the user's were written for (their own id,
        and the ids of accounts merged into theirs). Each key stays locked until the transaction ends: two
        erasures rewriting one object do it in turn (else the later write would restore the line the
        earlier one blanked)."""

    @abc.abstractmethod
    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        """The source account was merged into the target: the lines held for the source are the target's
        (the user id they were written for stays the source's, as the lines say)."""

    @abc.abstractmethod
    async def erase_user(self, user_id: str) -> None:
        """Forget the objects held for the user (an erasure, once their lines are blanked)."""
