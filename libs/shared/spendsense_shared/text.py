"""Text as the edges accept it: PostgreSQL's ``text`` cannot hold a NUL character (it answers an error,
which used to surface as a 500), so a string field that is stored says so in its type."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

NUL = "\x00"


def reject_nul(value: str) -> str:
    if NUL in value:
        raise ValueError("must not contain a NUL character")
    return value


# A string that may be stored: no NUL. Use it for every request field that reaches the database.
StoredText = Annotated[str, AfterValidator(reject_nul)]
