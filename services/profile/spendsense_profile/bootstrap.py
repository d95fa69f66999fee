"""The profile service's composition root: builds its adapters and wires them into its use cases."""

from __future__ import annotations

from functools import partial
from typing import Any, cast

from spendsense_profile.adapters.orm import messaging
from spendsense_profile.adapters.push import SnsPushNotifier, platform_applications
from spendsense_profile.adapters.unit_of_work import SqlProfileUnitOfWork
from spendsense_profile.api.consent import router as consent_router
from spendsense_profile.api.profile import router as profile_router
from spendsense_profile.api.uploads import router as uploads_router
from spendsense_profile.api.uploads import upload_max_bytes
from spendsense_profile.domain import commands
from spendsense_profile.handlers import consent, erasure, profile, push, uploads
from spendsense_profile.handlers.push import PushNotifier
from spendsense_profile.settings import ProfileSettings
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
        "persona.assigned": uploads.record_progress,
        "recommendations.generated": uploads.record_progress,
        "upload.failed": uploads.record_progress,
        "recommendations.published": partial(push.notify_recommendations_published, push=notifier),
        "user.erased": forget_erased_user,  # the erasure's own announcements, once it is complete
    }


def bootstrap(platform: Platform) -> Wiring:
    settings = cast(ProfileSettings, platform.settings)
    uow = platform.database.uow_factory(SqlProfileUnitOfWork)
    data_bucket = ObjectStore(platform.aws, platform.topology.buckets["data"], "profile")
    notifier = SnsPushNotifier(platform.aws, settings.env, platform_applications(settings))
    fx_rates = dict(settings.fx_rates)
    handlers: dict[type[Message[Any]], MessageHandler] = {
        commands.GrantConsent: lambda cmd: consent.grant_consent(cmd, uow()),
        commands.RevokeConsent: lambda cmd: consent.revoke_consent(cmd, uow()),
        commands.EraseUser: lambda cmd: erasure.erase_user(cmd, uow(), data_bucket, notifier),
        commands.GetConsentHistory: lambda q: consent.consent_history(q, uow()),
        commands.HasCurrentConsent: lambda q: consent.has_current_consent(q, uow()),
        commands.IngestUpload: lambda cmd: uploads.ingest_upload(cmd, uow(), data_bucket, fx_rates),
        commands.GetUpload: lambda q: uploads.get_upload(q, uow()),
        commands.GetProfile: lambda q: profile.get_profile(q, uow()),
        commands.GetMobileProfile: lambda q: profile.get_mobile_profile(q, uow()),
        commands.RegisterPushDevice: lambda cmd: profile.register_push_device(cmd, uow()),
    }
    return Wiring(
        unit_of_work=uow,
        bus=MessageBus(handlers),
        event_handlers=event_handlers(notifier),
        consent=consent.StoredConsent(uow),
        dependencies={upload_max_bytes: settings.upload_max_bytes},
    )


SERVICE = ServiceDefinition(
    name="profile",
    title="SpendSense profile",
    settings_class=ProfileSettings,
    tables=messaging,
    routers=[consent_router, uploads_router, profile_router],
    bootstrap=bootstrap,
)
