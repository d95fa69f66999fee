"""Use cases: the profile views, push registration, and a profile for every registered user."""

from __future__ import annotations

from spendsense_profile.domain.commands import GetMobileProfile, GetProfile, RegisterPushDevice
from spendsense_profile.domain.profile import MobileProfileView, ProfileView, PushDevice
from spendsense_profile.handlers.unit_of_work import ProfileUnitOfWork
from spendsense_shared.messaging.catalog import EventData, UserRegistered
from spendsense_shared.messaging.envelope import EventEnvelope


async def _view(uow: ProfileUnitOfWork, user_id: str) -> ProfileView | None:
    async with uow:
        profile = await uow.consents.get_profile(user_id)
        if profile is None:
            return None
        return ProfileView(
            profile=profile,
            consent=await uow.consents.current(user_id),
            uploads=await uow.uploads.count_for_user(user_id),
            latest_upload=await uow.uploads.latest_for_user(user_id),
        )


async def get_profile(query: GetProfile, uow: ProfileUnitOfWork) -> ProfileView | None:
    return await _view(uow, query.user_id)


async def get_mobile_profile(query: GetMobileProfile, uow: ProfileUnitOfWork) -> MobileProfileView | None:
    view = await _view(uow, query.user_id)
    return None if view is None else MobileProfileView.of(view)


async def register_push_device(cmd: RegisterPushDevice, uow: ProfileUnitOfWork) -> None:
    async with uow:
        await uow.consents.ensure_profile(cmd.user_id)
        await uow.push_devices.register(PushDevice(cmd.token, cmd.user_id, cmd.platform))
        await uow.commit()


async def create_profile(envelope: EventEnvelope, data: EventData, uow: ProfileUnitOfWork) -> None:
    """user.registered → the user's profile (the consumer commits)."""
    if not isinstance(data, UserRegistered):
        raise TypeError(envelope.type)
    await uow.consents.ensure_profile(data.user_id)
