"""Path parameters every service shares, with the limits of the columns they end up in: an id longer than
its column is refused 422 naming it, before any handler (or a model built from it) sees it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

USER_ID_MAX = 128  # auth's users.id, and every service's user_id column

UserIdPath = Annotated[
    str, Path(min_length=1, max_length=USER_ID_MAX, description="The user's id (at most 128 characters)")
]
