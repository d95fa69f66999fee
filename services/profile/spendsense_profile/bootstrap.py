"""The profile service's composition root: builds its adapters and wires them into its use cases."""

from __future__ import annotations

from functools import partial
from typing import Any, cast

from spendsense_profile.adapters.orm import messaging
from spendsense_profile.adapters.parsing import SandboxedParser
from spendsense_profile.adapters.push import SnsPushNotifier, platform_applications
from spendsense_profile.adapters.unit_of_work import SqlProfileUnitOfWork
from spendsense_profile.adapters.upload_jobs import UploadJobs
from spendsense_profile.adapters.upload_sources import S3UploadSources
from spendsense_profile.api.consent import router as consent_router
from spendsense_profile.api.profile import router as profile_router
from spendsense_profile.api.uploads import router as uploads_router
from spendsense_profile.api.uploads import upload_max_bytes
from spendsense_profile.domain import commands
from spendsense_profile.domain.uploads import ParseBudget
from spendsense_profile.handlers import consent, erasure, profile, push, reconcile, uploads
from spendsense_profile.handlers.push import PushNotifier
from spendsense_profile.handlers.unit_of_work import UploadParser
from spendsense_profile.settings import ProfileSettings
from spendsense_shared.db import asyncpg_dsn
from spendsense_shared.erasure import forget_erased_user
from spendsense_shared.messagebus import Message, MessageBus, MessageHandler
from spendsense_shared.platform import Platform
from spendsense_shared.service import ServiceDefinition, Wiring
from spendsense_shared.storage import ObjectStore
from spendsense_shared.unit_of_work import EventHandler


def event_handlers(notifier: PushNotifier) -> dict[str, EventHandler]:
    return {
        "user.registered": profile.create_profile,
        "user.merged": profile.merge_profiles,
        "persona.assigned": uploads.record_progress,  # as published before personas.assigned
        "personas.assigned": uploads.record_personas,
        "recommendations.generated": uploads.record_progress,  # as published before the batch event
        "recommendations.batch_generated": uploads.record_recommended,
        "upload.failed": uploads.record_progress,
        "recommendations.published": partial(push.notify_recommendations_published, push=notifier),
        "user.erased": forget_erased_user,  # the erasure's own announcements, once it is complete
    }


def parse_budget(settings: ProfileSettings) -> ParseBudget:
    return ParseBudget(
        cpu_seconds=settings.upload_parse_cpu_seconds,
        wall_seconds=settings.upload_parse_wall_seconds,
        decompressed_bytes=settings.upload_max_decompressed_bytes,
    )


def bootstrap(platform: Platform, *, parser: UploadParser | None = None) -> Wiring:
    """``parser``: in place of the sandboxed one (tests)."""
    settings = cast(ProfileSettings, platform.settings)
    uow = platform.database.uow_factory(SqlProfileUnitOfWork)
    # Reads outside a transaction (no BEGIN, no ROLLBACK: two round trips fewer). Under READ COMMITTED,
    # PostgreSQL's default, each statement of a transaction sees its own snapshot anyway.
    read = platform.database.read_uow_factory(SqlProfileUnitOfWork)
    data_bucket = ObjectStore(platform.aws, platform.topology.buckets["data"], "profile")
    sources = S3UploadSources(data_bucket)
    parser = parser or SandboxedParser(sources, settings.fx_rates)
    budget = parse_budget(settings)
    notifier = SnsPushNotifier(platform.aws, settings.env, platform_applications(settings))
    handlers: dict[type[Message[Any]], MessageHandler] = {
        commands.GrantConsent: lambda cmd: consent.grant_consent(cmd, uow()),
        commands.RevokeConsent: lambda cmd: consent.revoke_consent(cmd, uow()),
        commands.EraseUser: lambda cmd: erasure.erase_user(cmd, uow(), data_bucket, notifier),
        commands.GetConsentHistory: lambda q: consent.consent_history(q, read()),
        commands.HasCurrentConsent: lambda q: consent.has_current_consent(q, read()),
        commands.ReceiveUpload: lambda cmd: uploads.receive_upload(
            cmd, uow(), sources, settings.upload_max_bytes
        ),
        commands.ProcessUpload: lambda cmd: uploads.process_upload(
            cmd,
            uow(),
            parser,
            sources,
            data_bucket,
            budget,
            settings.upload_job_max_attempts,
            stage=lambda events: uploads.announce_staged(uow(), events),
        ),
        commands.GetUpload: lambda q: uploads.get_upload(q, uow()),
        commands.GetProfile: lambda q: profile.get_profile(q, read()),
        commands.GetMobileProfile: lambda q: profile.get_mobile_profile(q, read()),
        commands.RegisterPushDevice: lambda cmd: profile.register_push_device(cmd, uow()),
    }
    return Wiring(
        unit_of_work=uow,
        bus=MessageBus(handlers),
        event_handlers=event_handlers(notifier),
        consent=consent.StoredConsent(read, platform.read_cache),
        dependencies={upload_max_bytes: settings.upload_max_bytes},
        reconcile={
            "uploads_not_analyzed": partial(
                reconcile.republish_stuck_uploads, uow, data_bucket, settings.reconcile_stuck_after_s
            )
        },
    )


def upload_jobs(platform: Platform, wiring: Wiring) -> UploadJobs:
    """The worker's upload jobs: each received upload through ``ProcessUpload`` on the wiring's bus."""
    settings = cast(ProfileSettings, platform.settings)
    bus = wiring.bus
    return UploadJobs(
        platform.database.engine,
        platform.database.schema,
        lambda upload_id: bus.handle(commands.ProcessUpload(upload_id)),
        listen_dsn=asyncpg_dsn(settings.database_url.get_secret_value()),
        concurrency=settings.upload_job_concurrency,
        poll_interval_s=settings.upload_job_poll_interval_s,
    )


SERVICE = ServiceDefinition(
    name="profile",
    title="SpendSense profile",
    settings_class=ProfileSettings,
    tables=messaging,
    routers=[consent_router, uploads_router, profile_router],
    bootstrap=bootstrap,
    caches_reads=True,
)
