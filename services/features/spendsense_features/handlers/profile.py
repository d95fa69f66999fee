"""Queries of the user-facing profile API: the latest signals, and personas with their history."""

from __future__ import annotations

from spendsense_features.domain.commands import GetPersona, GetSignals
from spendsense_features.domain.model import HistoryPosition, PersonaPage, StoredSignals
from spendsense_features.handlers.unit_of_work import FeaturesUnitOfWork


async def get_signals(query: GetSignals, uow: FeaturesUnitOfWork) -> StoredSignals | None:
    async with uow:
        return await uow.analyses.signals(query.user_id, query.window)


async def get_persona(query: GetPersona, uow: FeaturesUnitOfWork) -> PersonaPage | None:
    """None when the user was never analyzed."""
    async with uow:
        current = await uow.analyses.current_personas(query.user_id)
        if not current:
            return None
        history = await uow.analyses.persona_history(query.user_id, query.limit + 1, query.after)
    more, history = len(history) > query.limit, history[: query.limit]
    return PersonaPage(
        user_id=query.user_id,
        current={a.window: a for a in current},
        history=history,
        next_after=HistoryPosition(history[-1].assigned_at, history[-1].window) if more else None,
    )
