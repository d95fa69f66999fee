"""What may be logged of a failed database call.

SQLAlchemy's message of a failed statement carries its bound values (engines are created with
``hide_parameters=True`` for that), and PostgreSQL's own message quotes values too (``invalid input
syntax for type integer: "…"``): of a database error only its type and SQL state are logged.

Duck-typed (``orig``, ``statement``, ``sqlstate``/``pgcode``): routers may import this module's users,
and routers reach no SQL library.
"""

from __future__ import annotations


def db_error_fields(exc: BaseException) -> dict[str, str] | None:
    """``{"db_error", "sqlstate"}`` of the first database error in ``exc``'s chain (itself, its cause or
    the error it was raised while handling); None when there is none."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_db_error(current):
            original = getattr(current, "orig", None) or current
            return {"db_error": type(original).__name__, "sqlstate": _sqlstate(current) or "unknown"}
        current = current.__cause__ or current.__context__
    return None


def _is_db_error(exc: BaseException) -> bool:
    sqlalchemy_error = hasattr(exc, "orig") and hasattr(exc, "statement")
    return sqlalchemy_error or _sqlstate(exc) is not None


def _sqlstate(exc: BaseException) -> str | None:
    # SQLAlchemy's asyncpg adapter wraps asyncpg's error: DBAPIError.orig → AdaptedError → asyncpg error
    # (its class's generic state, e.g. 22000), the driver's error holds the precise one (22P02): deepest first
    orig = getattr(exc, "orig", None)
    candidates = (getattr(orig, "__cause__", None), orig, exc)
    for source in candidates:
        state = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
        if isinstance(state, str) and state:
            return state
    return None
