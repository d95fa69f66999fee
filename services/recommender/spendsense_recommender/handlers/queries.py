"""Use cases of the recommendations API: the user's visible items (approved or overridden) and feedback,
operators' traces."""

from __future__ import annotations

from spendsense_recommender.domain.commands import (
    ApprovedRecommendations,
    CheckTrace,
    ListTraces,
    RecordFeedback,
)
from spendsense_recommender.domain.model import (
    ApprovedPage,
    ApprovedPosition,
    RecommendationNotFound,
    TraceCheck,
    TracePage,
)
from spendsense_recommender.domain.replay import replay
from spendsense_recommender.domain.trace import verify_chains
from spendsense_recommender.handlers.unit_of_work import RecommenderUnitOfWork


async def record_feedback(cmd: RecordFeedback, uow: RecommenderUnitOfWork) -> None:
    async with uow:
        item_id = await uow.recommendations.visible_item_id(cmd.user_id, cmd.recommendation_id)
        if item_id is None:
            raise RecommendationNotFound(f"recommendation_id: {cmd.recommendation_id} is not one of yours")
        await uow.recommendations.add_feedback(
            cmd.user_id, cmd.recommendation_id, item_id, cmd.kind, cmd.comment
        )
        await uow.commit()


async def approved_recommendations(
    query: ApprovedRecommendations, uow: RecommenderUnitOfWork
) -> ApprovedPage:
    async with uow:
        rows = await uow.recommendations.visible(query.user_id, query.limit + 1, query.after)
    more, rows = len(rows) > query.limit, rows[: query.limit]
    last = rows[-1] if more else None
    return ApprovedPage(rows, ApprovedPosition(last.created_at, last.rank, last.id) if last else None)


async def list_traces(query: ListTraces, uow: RecommenderUnitOfWork) -> TracePage:
    async with uow:
        chains = await uow.recommendations.chains(query.user_id)
        rows = await uow.recommendations.traces(query.user_id, query.limit + 1, query.after_seq)
    more, rows = len(rows) > query.limit, rows[: query.limit]
    return TracePage(
        items=[r.trace for r in rows],
        chain=verify_chains(chains).to_dict(),
        next_after=rows[-1].seq if more else None,
    )


async def check_trace(query: CheckTrace, uow: RecommenderUnitOfWork) -> TraceCheck | None:
    async with uow:
        chains = await uow.recommendations.chains(query.user_id)
    every = (t for chain in chains.values() for t in chain)
    trace = next((t for t in every if t.get("recommendation_id") == query.recommendation_id), None)
    if trace is None:
        return None
    replayed = replay(trace)
    return TraceCheck(
        trace=trace,
        chain=verify_chains(chains).to_dict(),
        replay={"matches": replayed.matches, "differences": replayed.differences},
    )
