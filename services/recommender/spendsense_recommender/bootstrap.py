"""The recommender's one composition root: builds its adapters (the data bucket's object store for
claim checks, the text writer, the SQL unit of work) and wires them into its use cases and handlers."""

from __future__ import annotations

from functools import partial
from typing import cast

from spendsense_recommender.adapters.build_pool import BuildPool
from spendsense_recommender.adapters.llm import make_writer
from spendsense_recommender.adapters.orm import messaging
from spendsense_recommender.adapters.unit_of_work import SqlRecommenderUnitOfWork
from spendsense_recommender.api.recommendations import router as recommendations_router
from spendsense_recommender.domain.commands import (
    ApprovedRecommendations,
    CheckTrace,
    ListTraces,
    RecordFeedback,
)
from spendsense_recommender.domain.writer import TemplateWriter
from spendsense_recommender.handlers import queries
from spendsense_recommender.handlers.erasure import erase_user
from spendsense_recommender.handlers.merge import merge_users
from spendsense_recommender.handlers.recommend import (
    apply_review,
    generate_for_batch,
    generate_recommendations,
)
from spendsense_recommender.settings import RecommenderSettings
from spendsense_shared.consent import ProjectedConsent, consent_handlers
from spendsense_shared.erasure import forget_erased_user
from spendsense_shared.messagebus import MessageBus
from spendsense_shared.platform import Platform
from spendsense_shared.service import ServiceDefinition, Wiring
from spendsense_shared.storage import ObjectStore


def bootstrap(platform: Platform) -> Wiring:
    settings = cast(RecommenderSettings, platform.settings)
    data = ObjectStore(platform.aws, platform.topology.buckets["data"], "")
    uow = platform.database.uow_factory(SqlRecommenderUnitOfWork)
    read = platform.database.read_uow_factory(SqlRecommenderUnitOfWork)  # one-statement reads
    bus = MessageBus(
        {
            RecordFeedback: lambda c: queries.record_feedback(c, uow()),
            ApprovedRecommendations: lambda q: queries.approved_recommendations(q, read()),
            ListTraces: lambda q: queries.list_traces(q, uow()),
            CheckTrace: lambda q: queries.check_trace(q, uow()),
        }
    )
    writer = make_writer(settings, platform.cache)
    # Started at the first batch (only the worker has any): the API processes never start one.
    build: BuildPool | None = None
    if isinstance(writer, TemplateWriter) and settings.build_processes != 1:
        build = BuildPool(settings.build_processes or None)
        platform.closers.append(build.close)
    generate = partial(generate_recommendations, store=data, writer=writer, build=build)
    generate_batch = partial(generate_for_batch, store=data, writer=writer, build=build)
    return Wiring(
        unit_of_work=uow,
        bus=bus,
        event_handlers={
            **consent_handlers(),
            "persona.assigned": generate,  # as published before personas.assigned
            "personas.assigned": generate_batch,
            "recommendation.reviewed": apply_review,
            "user.merged": merge_users,
            "user.erasure_requested": partial(erase_user, store=data),
            "user.erased": forget_erased_user,
        },
        consent=ProjectedConsent(read, cache=platform.read_cache),
    )


SERVICE = ServiceDefinition(
    name="recommender",
    title="SpendSense recommender",
    settings_class=RecommenderSettings,
    tables=messaging,
    routers=[recommendations_router],
    bootstrap=bootstrap,
    caches_reads=True,
)
