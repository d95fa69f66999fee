"""The profile's repositories on one SQLAlchemy session, in the profile schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, any_, bindparam, case, delete, func, null, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_profile.adapters.orm import (
    consents,
    erased_users,
    profiles,
    push_devices,
    upload_users,
    uploads,
)
from spendsense_profile.domain.consent import Consent
from spendsense_profile.domain.profile import Profile, PushDevice
from spendsense_profile.domain.uploads import (
    ErasedUploads,
    Upload,
    UploadSource,
    UploadSummary,
    UserProgress,
    erased_from,
    upload_objects,
    upload_status,
    with_users_status,
)
from spendsense_profile.handlers.unit_of_work import (
    ConsentRepository,
    PushDeviceRepository,
    UploadRepository,
)
from spendsense_shared.dataset import user_of_key
from spendsense_shared.db import insert_all
from spendsense_shared.erasure import pseudonym

# The source's place in each upload's user ids becomes the target's (once; the ids stay sorted).
_REPLACE_UPLOAD_USER = text(
    "UPDATE uploads SET updated_at = now(), user_ids = ARRAY("
    "SELECT u FROM unnest(array_replace(user_ids, CAST(:source AS varchar), CAST(:target AS varchar))) AS u "
    'GROUP BY u ORDER BY u COLLATE "C") '
    "WHERE user_ids @> ARRAY[CAST(:source AS varchar)]"
)


def _consent(row: Any) -> Consent:
    return Consent(
        consent_id=row.consent_id,
        user_id=row.user_id,
        policy_version=row.policy_version,
        scopes=tuple(row.scopes),
        granted_at=row.granted_at,
        revoked_at=row.revoked_at,
    )


class SqlConsentRepository(ConsentRepository):
    def __init__(self, session: AsyncSession):
        self.session = session

    async def ensure_profile(self, user_id: str) -> None:
        await self.session.execute(insert(profiles).values(user_id=user_id).on_conflict_do_nothing())
        await self.session.execute(
            select(profiles.c.user_id).where(profiles.c.user_id == user_id).with_for_update()
        )

    async def get_profile(self, user_id: str) -> Profile | None:
        row = (await self.session.execute(select(profiles).where(profiles.c.user_id == user_id))).first()
        return None if row is None else Profile(user_id=row.user_id, created_at=row.created_at)

    async def current(self, user_id: str, *, for_update: bool = False) -> Consent | None:
        query = select(consents).where(consents.c.user_id == user_id, consents.c.revoked_at.is_(None))
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return None if row is None else _consent(row)

    async def without_current_consent(self, user_ids: list[str]) -> set[str]:
        if not user_ids:
            return set()
        # one array parameter, however many users (an IN list is a parameter each: at most 32,767)
        ids = bindparam("user_ids", user_ids, type_=ARRAY(String))
        query = select(consents.c.user_id).where(
            consents.c.user_id == any_(ids), consents.c.revoked_at.is_(None)
        )
        consented = set((await self.session.execute(query)).scalars())
        return set(user_ids) - consented

    async def history(self, user_id: str) -> list[Consent]:
        rows = await self.session.execute(
            select(consents).where(consents.c.user_id == user_id).order_by(consents.c.granted_at.desc())
        )
        return [_consent(r) for r in rows]

    async def add(self, consent: Consent) -> None:
        await self.session.execute(
            insert(consents).values(
                consent_id=consent.consent_id,
                user_id=consent.user_id,
                policy_version=consent.policy_version,
                scopes=list(consent.scopes),
                granted_at=consent.granted_at,
            )
        )

    async def mark_revoked(self, consent: Consent) -> None:
        await self.session.execute(
            update(consents)
            .where(consents.c.consent_id == consent.consent_id)
            .values(revoked_at=consent.revoked_at)
        )

    async def reassign(self, source_user_id: str, target_user_id: str) -> None:
        await self.session.execute(
            update(consents).where(consents.c.user_id == source_user_id).values(user_id=target_user_id)
        )

    async def delete_profile(self, user_id: str) -> None:
        await self.session.execute(delete(profiles).where(profiles.c.user_id == user_id))

    async def erase_user(self, user_id: str) -> None:
        await self.session.execute(delete(consents).where(consents.c.user_id == user_id))
        await self.delete_profile(user_id)
        await self.session.execute(
            insert(erased_users)
            .values(subject=pseudonym(user_id), erased_at=func.now())
            .on_conflict_do_nothing()
        )

    async def is_erased(self, user_id: str) -> bool:
        found = await self.session.execute(
            select(erased_users.c.subject).where(erased_users.c.subject == pseudonym(user_id))
        )
        return found.first() is not None


class SqlUploadRepository(UploadRepository):
    def __init__(self, session: AsyncSession):
        self.session = session

    async def add(self, upload: Upload) -> None:
        source = upload.source
        await self.session.execute(
            insert(uploads).values(
                upload_id=upload.upload_id,
                uploader_id=upload.uploader_id,
                status=upload.status,
                error=upload.error,
                format=upload.format,
                size_bytes=upload.size_bytes,
                user_ids=upload.user_ids,
                counts=upload.counts,
                notes=upload.notes,
                as_of=upload.as_of,
                keys=upload.keys,
                uploader_is_operator=upload.uploader_is_operator,
                source_key=source.name if source else None,
                filename=source.filename[:256] if source and source.filename else None,
                content_type=source.content_type[:256] if source and source.content_type else None,
                correlation_id=upload.correlation_id,
                attempts=upload.attempts,
            )
        )
        await self._insert_users(upload)
        if upload.waiting:  # delivered when (and only when) the transaction commits
            await self.session.execute(
                text("SELECT pg_notify('uploads_' || current_schema(), :upload_id)"),
                {"upload_id": upload.upload_id},
            )

    async def _insert_users(self, upload: Upload) -> None:
        if upload.users:
            rows = [
                {"upload_id": upload.upload_id, "user_id": u.user_id, "stage": u.stage, "reason": u.reason}
                for u in upload.users
            ]
            await self.session.execute(insert_all(upload_users, rows))

    async def save(self, upload: Upload) -> None:
        await self.session.execute(
            update(uploads)
            .where(uploads.c.upload_id == upload.upload_id)
            .values(
                status=upload.status,
                error=upload.error,
                format=upload.format,
                user_ids=upload.user_ids,
                counts=upload.counts,
                notes=upload.notes,
                as_of=upload.as_of,
                keys=upload.keys,
                updated_at=func.now(),
            )
        )
        await self.session.execute(delete(upload_users).where(upload_users.c.upload_id == upload.upload_id))
        await self._insert_users(upload)

    async def count_attempt(self, upload_id: str) -> int:
        attempts = await self.session.execute(
            update(uploads)
            .where(uploads.c.upload_id == upload_id)
            .values(attempts=uploads.c.attempts + 1)
            .returning(uploads.c.attempts)
        )
        return int(attempts.scalar_one())

    async def source_deleted(self, upload_id: str) -> None:
        await self.session.execute(
            update(uploads).where(uploads.c.upload_id == upload_id).values(source_key=None)
        )

    async def get(self, upload_id: str, *, for_update: bool = False) -> Upload | None:
        query = select(uploads).where(uploads.c.upload_id == upload_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        if row is None:
            return None
        users_query = (
            select(upload_users.c.user_id, upload_users.c.stage, upload_users.c.reason)
            .where(upload_users.c.upload_id == upload_id)
            .order_by(upload_users.c.user_id)
        )
        if for_update:
            users_query = users_query.with_for_update()
        users = (await self.session.execute(users_query)).all()
        upload = Upload(
            upload_id=row.upload_id,
            uploader_id=row.uploader_id,
            status=row.status,
            size_bytes=row.size_bytes,
            user_ids=list(row.user_ids),
            counts=row.counts,
            notes=row.notes,
            keys=row.keys,
            format=row.format,
            as_of=row.as_of,
            error=row.error,
            users=[UserProgress(user_id, stage, reason) for user_id, stage, reason in users],
            created_at=row.created_at,
            updated_at=row.updated_at,
            uploader_is_operator=row.uploader_is_operator,
            source=UploadSource(row.source_key, row.filename, row.content_type) if row.source_key else None,
            correlation_id=row.correlation_id,
            attempts=row.attempts,
        )
        return with_users_status(upload)

    async def stages_of(self, upload_id: str, user_ids: list[str]) -> dict[str, UserProgress]:
        rows = await self.session.execute(
            select(upload_users.c.user_id, upload_users.c.stage, upload_users.c.reason)
            .where(upload_users.c.upload_id == upload_id, upload_users.c.user_id.in_(user_ids))
            .order_by(upload_users.c.user_id)  # rows locked in one order: two batches never deadlock
            .with_for_update()
        )
        return {row.user_id: UserProgress(row.user_id, row.stage, row.reason) for row in rows}

    async def save_stages(self, upload_id: str, progress: list[UserProgress]) -> None:
        # one statement per stage and reason: a batch of progress events is usually a single one
        same: dict[tuple[str, str | None], list[str]] = {}
        for p in progress:
            same.setdefault((p.stage, p.reason), []).append(p.user_id)
        for (stage, reason), user_ids in same.items():
            await self.session.execute(
                update(upload_users)
                .where(upload_users.c.upload_id == upload_id, upload_users.c.user_id.in_(user_ids))
                .values(stage=stage, reason=reason, updated_at=func.now())
            )

    async def stuck(self, stage: str, older_than_s: float, limit: int) -> dict[str, list[str]]:
        rows = (
            await self.session.execute(
                select(upload_users.c.upload_id, upload_users.c.user_id)
                .where(
                    upload_users.c.stage == stage,
                    upload_users.c.updated_at
                    < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_s),
                )
                .order_by(upload_users.c.upload_id, upload_users.c.user_id)
                .limit(limit)
            )
        ).all()
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row.upload_id, []).append(row.user_id)
        return found

    async def touch_stage(self, upload_id: str, user_ids: list[str]) -> None:
        await self.session.execute(
            update(upload_users)
            .where(upload_users.c.upload_id == upload_id, upload_users.c.user_id.in_(user_ids))
            .values(updated_at=func.now())
        )

    async def count_for_user(self, user_id: str) -> int:
        query = select(func.count()).select_from(uploads).where(uploads.c.user_ids.contains([user_id]))
        return int((await self.session.execute(query)).scalar_one())

    async def latest_for_user(self, user_id: str) -> UploadSummary | None:
        row = (
            await self.session.execute(
                select(uploads.c.upload_id, uploads.c.status, uploads.c.created_at)
                .where(uploads.c.user_ids.contains([user_id]))
                .order_by(uploads.c.created_at.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        stages = await self.session.execute(  # one user per stage and reason: all the status needs
            select(
                func.min(upload_users.c.user_id).label("user_id"), upload_users.c.stage, upload_users.c.reason
            )
            .where(upload_users.c.upload_id == row.upload_id)
            .group_by(upload_users.c.stage, upload_users.c.reason)
        )
        users = [UserProgress(u.user_id, u.stage, u.reason) for u in stages]
        status = upload_status(users)[0] if users else row.status
        return UploadSummary(row.upload_id, status, row.created_at)

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        both = select(upload_users.c.upload_id).where(upload_users.c.user_id == target_user_id)
        shared = [
            r.upload_id
            for r in await self.session.execute(
                select(upload_users.c.upload_id)
                .where(upload_users.c.user_id == source_user_id, upload_users.c.upload_id.in_(both))
                .order_by(upload_users.c.upload_id)
            )
        ]
        if shared:  # the target's progress is kept
            await self.session.execute(
                delete(upload_users).where(
                    upload_users.c.user_id == source_user_id, upload_users.c.upload_id.in_(shared)
                )
            )
        await self.session.execute(
            update(upload_users)
            .where(upload_users.c.user_id == source_user_id)
            .values(user_id=target_user_id, updated_at=func.now())
        )
        await self.session.execute(_REPLACE_UPLOAD_USER, {"source": source_user_id, "target": target_user_id})
        await self.session.execute(
            update(uploads)
            .where(uploads.c.uploader_id == source_user_id)
            .values(uploader_id=target_user_id, updated_at=func.now())
        )
        # A shared upload's status no longer counts the source's progress: it is derived when read.

    async def erase_user(self, user_id: str) -> ErasedUploads:
        involved = [
            r.upload_id
            for r in await self.session.execute(
                select(uploads.c.upload_id)
                .where(or_(uploads.c.user_ids.contains([user_id]), uploads.c.uploader_id == user_id))
                .order_by(uploads.c.upload_id)
                .with_for_update()
            )
        ]
        erased = ErasedUploads()
        for upload_id in involved:
            upload = await self.get(upload_id, for_update=True)
            if upload is None:
                continue
            if upload.waiting and upload.uploader_is_operator:  # a batch import still to be parsed
                await self.session.execute(
                    update(uploads)
                    .where(uploads.c.upload_id == upload_id)
                    .values(uploader_id=pseudonym(user_id), updated_at=func.now())
                )
                continue
            others = [u for u in upload.user_ids if u != user_id]
            if not others:  # only their data (or theirs, still to be parsed): the whole upload goes
                await self.session.execute(delete(upload_users).where(upload_users.c.upload_id == upload_id))
                await self.session.execute(delete(uploads).where(uploads.c.upload_id == upload_id))
                erased.prefixes.append(upload_objects(upload_id))  # its received bytes, its snapshots
                continue
            await self.session.execute(
                delete(upload_users).where(
                    upload_users.c.upload_id == upload_id, upload_users.c.user_id == user_id
                )
            )
            kept = erased_from(upload, user_id)
            erased.shared_keys.extend(k for k in kept.keys if user_of_key(k) is None)
            await self.session.execute(
                update(uploads)
                .where(uploads.c.upload_id == upload_id)
                .values(
                    uploader_id=kept.uploader_id,
                    user_ids=kept.user_ids,
                    keys=kept.keys,
                    notes=kept.notes,
                    status=kept.status,
                    error=kept.error,
                    updated_at=func.now(),
                )
            )
        return erased


class SqlPushDeviceRepository(PushDeviceRepository):
    def __init__(self, session: AsyncSession):
        self.session = session

    async def holder(self, token: str) -> PushDevice | None:
        query = select(push_devices).where(push_devices.c.token == token).with_for_update()
        row = (await self.session.execute(query)).first()
        if row is None:
            return None
        return PushDevice(row.token, row.user_id, row.platform, row.endpoint_arn, row.disabled_at)

    async def register(self, device: PushDevice) -> None:
        # A token moves to another user only once its device was found unreachable (the handler checks;
        # the WHERE below keeps a concurrent registration from moving a reachable one). Registering again
        # re-enables a disabled device: it drops the endpoint (as does a change of platform), so its next
        # push creates, and re-enables, one. In ON CONFLICT, push_devices.c.* is the existing row.
        stmt = insert(push_devices).values(
            token=device.token, user_id=device.user_id, platform=device.platform
        )
        new_endpoint = or_(
            push_devices.c.disabled_at.is_not(None), push_devices.c.platform != stmt.excluded.platform
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[push_devices.c.token],
                set_={
                    "user_id": stmt.excluded.user_id,
                    "platform": stmt.excluded.platform,
                    "registered_at": func.now(),
                    "endpoint_arn": case((new_endpoint, null()), else_=push_devices.c.endpoint_arn),
                    "disabled_at": null(),
                },
                where=or_(
                    push_devices.c.user_id == stmt.excluded.user_id, push_devices.c.disabled_at.is_not(None)
                ),
            )
        )

    async def for_user(self, user_id: str) -> list[PushDevice]:
        rows = await self.session.execute(
            select(push_devices).where(push_devices.c.user_id == user_id).order_by(push_devices.c.token)
        )
        return [
            PushDevice(
                token=r.token,
                user_id=r.user_id,
                platform=r.platform,
                endpoint_arn=r.endpoint_arn,
                disabled_at=r.disabled_at,
            )
            for r in rows
        ]

    async def set_endpoint(self, token: str, endpoint_arn: str) -> None:
        await self.session.execute(
            update(push_devices).where(push_devices.c.token == token).values(endpoint_arn=endpoint_arn)
        )

    async def disable(self, token: str, at: datetime) -> None:
        await self.session.execute(
            update(push_devices).where(push_devices.c.token == token).values(disabled_at=at)
        )

    async def reassign(self, source_user_id: str, target_user_id: str) -> None:
        await self.session.execute(
            update(push_devices)
            .where(push_devices.c.user_id == source_user_id)
            .values(user_id=target_user_id)
        )

    async def erase_user(self, user_id: str) -> None:
        await self.session.execute(delete(push_devices).where(push_devices.c.user_id == user_id))
