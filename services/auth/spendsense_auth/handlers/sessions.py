"""Starting a session: a token pair whose refresh token is stored (hashed) in its family."""

from __future__ import annotations

import uuid
from datetime import timedelta

from spendsense_auth.domain.accounts import RefreshSession, TokenPair, User, hash_refresh_token
from spendsense_auth.handlers.ports import TokenIssuer
from spendsense_auth.handlers.unit_of_work import AuthUnitOfWork


def new_id() -> str:
    return uuid.uuid4().hex


async def start_session(
    uow: AuthUnitOfWork, tokens: TokenIssuer, user: User, family_id: str | None = None
) -> TokenPair:
    """Issue a pair for ``user`` in ``family_id`` (a new family when None) and store its refresh token,
    in ``uow``'s transaction (the caller commits)."""
    family = family_id or new_id()
    pair = tokens.issue(user, family_id=family)
    now = tokens.clock.now()
    await uow.sessions.add(
        RefreshSession(
            token_hash=hash_refresh_token(pair.refresh_token),
            family_id=family,
            user_id=user.id,
            issued_at=now,
            expires_at=now + timedelta(seconds=tokens.refresh_ttl_s),
        )
    )
    return pair
