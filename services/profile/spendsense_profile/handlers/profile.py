"""Use cases: the profile views, push registration, a profile for every registered user, and the merge of
two accounts of one person into one."""

from __future__ import annotations

from spendsense_profile.domain.commands import GetMobileProfile, GetProfile, RegisterPushDevice
from spendsense_profile.domain.consent import superseded_by_merge
from spendsense_profile.domain.profile import DeviceTokenInUse, MobileProfileView, ProfileView, PushDevice
from spendsense_profile.handlers.unit_of_work import ProfileUnitOfWork
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import EventData, UserMerged, UserRegistered
from spendsense_shared.messaging.envelope import EventEnvelope

log = get_logger(__name__)


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
    """Raises :class:`DeviceTokenInUse` when another user holds the token and it is still reachable."""
    async with uow:
        held = await uow.push_devices.holder(cmd.token)
        if held is not None and not held.may_move_to(cmd.user_id):
            log.warning("push_token_in_use", user=cmd.user_id)
            raise DeviceTokenInUse
        await uow.consents.ensure_profile(cmd.user_id)
        await uow.push_devices.register(PushDevice(cmd.token, cmd.user_id, cmd.platform))
        await uow.commit()


async def create_profile(envelope: EventEnvelope, data: EventData, uow: ProfileUnitOfWork) -> None:
    """user.registered → the user's profile (the consumer commits)."""
    if not isinstance(data, UserRegistered):
        raise TypeError(envelope.type)
    await uow.consents.ensure_profile(data.user_id)


async def merge_profiles(envelope: EventEnvelope, data: EventData, uow: ProfileUnitOfWork) -> None:
    """user.merged → everything the profile keeps of the source account becomes the target's (the
    consumer commits): the target gets a profile if it has none; the source's consent history moves, the
    target's current consent staying current (the source's, if both have one, is revoked at the merge
    time); its uploads' membership, normalized data (the target's row wins on a shared key) and push
    devices move; its profile is deleted. Nothing is published (no re-analysis: the target's next
    upload does that). A redelivery finds nothing of the source and changes nothing."""
    if not isinstance(data, UserMerged):
        raise TypeError(envelope.type)
    source, target = data.source_user_id, data.target_user_id
    if source == target:
        return
    await uow.consents.ensure_profile(target)
    kept = await uow.consents.current(target, for_update=True)
    superseded = superseded_by_merge(
        await uow.consents.current(source, for_update=True), kept, envelope.occurred_at
    )
    if superseded is not None:
        await uow.consents.mark_revoked(superseded)
    await uow.consents.reassign(source, target)
    await uow.uploads.merge_user(source, target)
    await uow.data.merge_user(source, target)
    await uow.push_devices.reassign(source, target)
    await uow.consents.delete_profile(source)
