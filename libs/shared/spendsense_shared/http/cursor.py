"""The one cursor codec: what a list's ``next_cursor`` holds, and how a cursor a client sends back is
checked before it reaches a query.

A cursor is opaque to clients (base64url of a small JSON object, see :mod:`.pagination`), but nothing
stops a client from making one by hand. Each list declares its cursor as a :class:`CursorModel`; a
cursor that does not decode, or whose keys, types or values are not what that list issues (a missing
key, a date without a time zone, a number out of the database's range), answers 422 ``invalid_cursor``
and never reaches the database.

    class ApprovedCursor(CursorModel):
        t: CursorTime
        r: CursorInt
        i: CursorText

    after = read_cursor(page.after, ApprovedCursor)   # None on the first page
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from spendsense_shared.http.errors import ApiError, field_path
from spendsense_shared.text import reject_nul

BIGINT = 2**63 - 1


def _iso_text(value: Any) -> Any:
    if not isinstance(value, str):  # pydantic would take a number as a Unix time: not what we issue
        raise ValueError("must be an ISO 8601 date-time with its time zone")
    return value


# ``datetime.isoformat()`` of an aware datetime
CursorTime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
CursorInt = Annotated[StrictInt, Field(ge=-BIGINT - 1, le=BIGINT)]
CursorText = Annotated[StrictStr, Field(max_length=256), AfterValidator(reject_nul)]


class CursorModel(BaseModel):
    """A list's cursor: exactly these keys (no more), each of its declared type."""

    model_config = ConfigDict(extra="forbid", frozen=True)


CursorT = TypeVar("CursorT", bound=CursorModel)


def invalid_cursor(reason: str = "not a cursor this API issued", details: Any = None) -> ApiError:
    details = details or [{"field": "cursor", "reason": reason}]
    return ApiError(422, "invalid_cursor", f"cursor: {reason}", details)


def read_cursor(after: dict[str, Any] | None, model: type[CursorT]) -> CursorT | None:
    """``after`` (a decoded cursor) as ``model``, None on the first page; 422 ``invalid_cursor``
    naming the bad key otherwise."""
    if after is None:
        return None
    try:
        return model.model_validate(after)
    except ValidationError as exc:
        details = [{"field": f"cursor.{field_path(e['loc'])}", "reason": e["msg"]} for e in exc.errors()]
        raise invalid_cursor(details=details) from None
