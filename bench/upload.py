"""An upload through the front door: ~500,000 transactions (1,502 synthetic users) posted to the gateway
of a real embedded stack (``spendsense up`` on free ports, a fresh state directory), against the plain
per-user reading of the same file offline, in the same run.

What a user of the product sees, measured from the client:

  * accepted  - ``POST /api/v1/uploads`` (operator batch import, JSON Lines, gzip-compressed as a client
                sends a large file — 230 MB plain, over the 200 MiB limit — streamed from disk) until its
                202 ``received`` answer: the request path only stores the bytes;
  * analyzed  - from the POST until every user of the upload is ``analyzed`` (or further) at
                ``GET /api/v1/uploads/{id}`` (the profile worker parses and merges it, writes the Parquet
                snapshots, features analyzes every chunk and profile records each ``personas.assigned``);
  * recommended - until every user is ``recommended``.

The baseline is ``bench/ingest_plain.py`` on the same JSON Lines: one ``json.loads`` per user and plain
loops computing the same signals roughly (the reading a developer would write without SpendSense),
as a command, in the same run. The stages of the pipeline are read from the workers' logs
(``upload_ingested``: merge, snapshots and commit seconds).

Not timed: generating the users (cached in bench/results/ingest-data/ by bench/ingest_data.py) and their
consent (each user's token is minted with the stack's own signing key, as if they had signed in, and
``POST /api/v1/consent`` is called for each through the gateway), then the wait until the stack has
handled the consent events (its processes quiet: see ``_wait_until_quiet``). The machine is shared: its
load is printed; run it twice and take the median. Writes bench/results/upload.json.

    .venv/bin/python bench/upload.py [--transactions 500000] [--runs 1] [--until-analyzed]

With ``KEEP_LOGS=<dir>`` the stack's logs are copied there before its state directory is removed (each
worker's log lines carry timestamps: where a run spent its time).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import ingest_data  # helpers beside this script
from stack_start import cli, cpu_by_name, free_block, port_args

from spendsense_shared.jwk import SigningKey

RESULTS = Path(__file__).parent / "results"
ISSUER, AUDIENCE = "spendsense-auth", "spendsense"  # the stack's defaults (SPENDSENSE_JWT_ISSUER/AUDIENCE)
RANK = {"received": 0, "ingested": 1, "analyzed": 2, "recommended": 3}


@dataclass
class Run:
    users: int
    transactions: int
    file_mb: float
    accepted_s: float
    analyzed_s: float
    recommended_s: float | None
    plain_s: float
    load_before: float
    stages: dict[str, Any] = field(default_factory=dict)
    # CPU seconds by process (psutil, the stack's processes and their children): from the POST until every
    # user was analyzed, and from then until every user was recommended
    cpu_until_analyzed: dict[str, float] = field(default_factory=dict)
    cpu_until_recommended: dict[str, float] = field(default_factory=dict)


def _gzipped(path: Path) -> Path:
    """The JSON Lines gzip-compressed, as a client sends a large file (cached beside it)."""
    target = path.with_suffix(".jsonl.gz")
    if not target.exists() or target.stat().st_mtime < path.stat().st_mtime:
        with path.open("rb") as source, gzip.open(target, "wb", compresslevel=6) as out:
            shutil.copyfileobj(source, out, 1 << 20)
    return target


def _plain_seconds(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(Path(__file__).parent / "ingest_plain.py"), str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _user_ids(path: Path) -> list[str]:
    with path.open("rb") as lines:
        return [json.loads(line)["user_id"] for line in lines if line.strip()]


def _grant_consent(gateway: str, key: SigningKey, user_ids: list[str]) -> None:
    def grant(user_id: str) -> None:
        token = key.sign(user_id, roles=["user"], issuer=ISSUER, audience=AUDIENCE)
        with httpx.Client(base_url=gateway, timeout=60) as client:
            response = client.post(
                "/api/v1/consent", json={"user_id": user_id}, headers={"Authorization": f"Bearer {token}"}
            )
            response.raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(grant, user_ids))


POLL_S = 0.25  # as a client polls: each answer lists every user's stage (1,502 here), not free to serve


def _follow(
    client: httpx.Client,
    upload_id: str,
    headers: dict[str, str],
    started: float,
    *,
    recommended: bool,
    on_analyzed: Callable[[], None],
) -> tuple[float, float | None]:
    """Seconds from ``started`` until every user is analyzed (then ``on_analyzed()``), and
    (``recommended``) until every user is recommended."""
    analyzed_at: float | None = None
    deadline = time.monotonic() + 900
    last = ""
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/uploads/{upload_id}", headers=headers).json()
        if body["status"] == "failed":
            raise RuntimeError(f"upload failed: {json.dumps(body.get('error'))[:800]}")
        users = body.get("users") or []
        least = min((RANK.get(u["stage"], -1) for u in users), default=0)
        now = time.perf_counter()
        if users and least >= RANK["analyzed"] and analyzed_at is None:
            analyzed_at = now - started
            on_analyzed()
            if not recommended:
                return analyzed_at, None
        if users and least >= RANK["recommended"]:
            return analyzed_at or now - started, now - started
        line = f"{body['status']}: " + ", ".join(
            f"{sum(1 for u in users if u['stage'] == s)} {s}"
            for s in RANK
            if any(u["stage"] == s for u in users)
        )
        if line != last:
            print(f"  {now - started:6.1f} s  {line}", flush=True)
            last = line
        time.sleep(POLL_S)
    raise TimeoutError(f"upload {upload_id} not recommended within 900 s")


def _records(state_dir: Path, worker: str) -> list[dict[str, Any]]:
    log = state_dir / "logs" / f"{worker}.log"
    records = []
    for line in log.read_text().splitlines() if log.exists() else []:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _at(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()


ASSIGNED_EVENTS = ("personas.assigned", "persona.assigned")  # a batch of users; one user (before)


def _timeline(state_dir: Path, posted_at: float) -> dict[str, float]:
    """Seconds from the POST until: the upload was ingested (profile worker), every chunk was analyzed
    (features worker), every ``personas.assigned`` was handled by the profile worker (its users are
    ``analyzed``): what is left between the last two is the events' way through the outbox relay and the
    broker."""
    marks: dict[str, float] = {}
    for record in _records(state_dir, "profile-worker"):
        if record.get("event") == "upload_ingested":
            marks["ingested_at_s"] = _at(record) - posted_at
        elif record.get("event") == "event_handled" and record.get("event_type") in ASSIGNED_EVENTS:
            marks["last_persona_recorded_at_s"] = _at(record) - posted_at
    for record in _records(state_dir, "features-worker"):
        if record.get("event") == "users_scored":
            marks["features_done_at_s"] = _at(record) - posted_at
    return {k: round(v, 1) for k, v in marks.items()}


def _stage_log(state_dir: Path) -> dict[str, Any]:
    """The workers' own account of each stage: the profile worker's ingest (parse — of which the parsing
    process's own life, ``parse_process_s`` — merge, snapshot read and write, commit seconds), and the
    features worker's analysis of the upload's chunks (sums over the chunks of reading the snapshots,
    analyzing, checking the details in and saving, in seconds; chunks are handled several at a time, so
    the sums may exceed the wall-clock span; a chunk analyzed ahead, on its ``upload.staged``, reads
    nothing then and its analysis is the wait for that result)."""
    found: dict[str, Any] = {}
    for record in _records(state_dir, "profile-worker"):
        if record.get("event") == "upload_ingested":
            found = {**found, **{k: v for k, v in record.items() if k.endswith("_s")}}
        elif record.get("event") == "upload_parse_process_ended":
            found["parse_process_s"] = record.get("s")
    features = _records(state_dir, "features-worker")
    found["features_taken_ahead"] = sum(1 for r in features if r.get("event") == "analysis_taken_ahead")
    chunks = [r for r in features if r.get("event") == "users_scored"]
    reads = [r for r in features if r.get("event") == "snapshots_read"]
    if chunks:
        found["features_chunks"] = len(chunks)
        for name in ("analyze_s", "details_and_save_s"):
            found[f"features_{name}"] = round(sum(r.get(name, 0) for r in chunks), 2)
        for name in ("remember_s", "read_s"):
            found[f"features_{name}"] = round(sum(r.get(name, 0) for r in reads), 2)
    return found


QUIET_CORE_SHARE = 0.15  # the stack is settled when all its processes use less than this of a core
QUIET_WAIT_MAX_S = 300


def _wait_until_quiet(state_dir: Path) -> float:
    """Seconds until the stack's processes together use less than ``QUIET_CORE_SHARE`` of a core over a
    second: the consent grants' events (3 consumers for each of 1,502 users) are handled, so the upload is
    measured on a settled stack and every service knows the consent (a fixed sleep was too short on a
    busy machine, and the upload then competed with them)."""
    started = time.perf_counter()
    before = sum(cpu_by_name(state_dir).values())
    while time.perf_counter() - started < QUIET_WAIT_MAX_S:
        time.sleep(1.0)
        now = sum(cpu_by_name(state_dir).values())
        used, before = now - before, now
        if used < QUIET_CORE_SHARE:
            break
    return time.perf_counter() - started


def run_once(files: ingest_data.Files, *, recommended: bool = True) -> Run:
    state_dir = Path(tempfile.mkdtemp(prefix="spendsense-bench-upload-"))
    base = free_block()
    gateway = f"http://127.0.0.1:{base}"
    try:
        up = cli("up", "--state-dir", str(state_dir), *port_args(base))
        if up.returncode != 0:
            raise RuntimeError(f"spendsense up failed:\n{up.stderr[-3000:]}")
        key = SigningKey.from_pem((state_dir / "keys" / "jwt.pem").read_bytes())
        user_ids = _user_ids(files.jsonl)
        print(f"stack ready; granting consent for {len(user_ids):,} users (not timed)", flush=True)
        _grant_consent(gateway, key, user_ids)
        admin = key.sign("bench-admin", roles=["user", "operator", "admin"], issuer=ISSUER, audience=AUDIENCE)
        headers = {"Authorization": f"Bearer {admin}"}
        settled_s = _wait_until_quiet(state_dir)
        print(f"  consent events handled everywhere after {settled_s:.1f} s (not timed)", flush=True)
        load_before = os.getloadavg()[0]
        upload = _gzipped(files.jsonl)
        with httpx.Client(base_url=gateway, timeout=600) as client, upload.open("rb") as body:
            cpu = [cpu_by_name(state_dir)]
            posted_at = time.time()
            started = time.perf_counter()
            response = client.post(
                "/api/v1/uploads",
                files={"file": ("users.jsonl.gz", body, "application/gzip")},
                headers=headers,
            )
            accepted_s = time.perf_counter() - started
            if response.status_code != 202:
                raise RuntimeError(f"upload refused: {response.status_code} {response.text[:500]}")
            print(f"  accepted in {accepted_s:.2f} s: {response.json()}", flush=True)
            analyzed_s, recommended_s = _follow(
                client,
                response.json()["upload_id"],
                headers,
                started,
                recommended=recommended,
                on_analyzed=lambda: cpu.append(cpu_by_name(state_dir)),
            )
            cpu.append(cpu_by_name(state_dir))
        stages = {**_stage_log(state_dir), **_timeline(state_dir, posted_at)}
    finally:
        cli("down", "--state-dir", str(state_dir))
        if os.environ.get("KEEP_LOGS"):
            shutil.copytree(state_dir / "logs", os.environ["KEEP_LOGS"], dirs_exist_ok=True)
        shutil.rmtree(state_dir, ignore_errors=True)
    plain_s = _plain_seconds(files.jsonl)
    return Run(
        users=files.users,
        transactions=files.transactions,
        file_mb=round(_gzipped(files.jsonl).stat().st_size / 1e6, 1),
        accepted_s=round(accepted_s, 2),
        analyzed_s=round(analyzed_s, 1),
        recommended_s=None if recommended_s is None else round(recommended_s, 1),
        plain_s=round(plain_s, 1),
        load_before=round(load_before, 1),
        stages=stages,
        cpu_until_analyzed=_used(cpu[0], cpu[1]),
        cpu_until_recommended=_used(cpu[1], cpu[2]) if recommended else {},
    )


def _used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds by process between two readings, largest first (the phase's own: its total in "all")."""
    used = {name: round(seconds - before.get(name, 0.0), 1) for name, seconds in after.items()}
    ranked = dict(sorted(((n, s) for n, s in used.items() if s >= 0.05), key=lambda item: -item[1]))
    return {"all": round(sum(ranked.values()), 1), **ranked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--transactions", type=int, default=500_000, help="about this many (~333 per user)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--until-analyzed",
        action="store_true",
        help="stop once every user is analyzed (the issue's target), without waiting for recommendations",
    )
    args = parser.parse_args()
    files = ingest_data.ensure(ingest_data.transactions_for(args.transactions))
    print(
        f"{files.users:,} users, {files.transactions:,} transactions, "
        f"{files.jsonl.stat().st_size / 1e6:.0f} MB of JSON Lines ({files.jsonl})",
        flush=True,
    )
    runs = [run_once(files, recommended=not args.until_analyzed) for _ in range(args.runs)]
    print(
        f"\n{'run':>3} {'accepted':>9} {'analyzed':>9} {'recommended':>12} {'plain reading':>14} {'load':>5}"
    )
    for i, run in enumerate(runs, start=1):
        print(
            f"{i:>3} {run.accepted_s:>8.2f}s {run.analyzed_s:>8.1f}s {run.recommended_s or 0:>11.1f}s "
            f"{run.plain_s:>13.1f}s {run.load_before:>5.1f}   worker: {run.stages}"
        )
        print(f"    CPU seconds until analyzed: {run.cpu_until_analyzed}")
        if run.cpu_until_recommended:
            print(f"    CPU seconds from analyzed until recommended: {run.cpu_until_recommended}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "upload.json"
    out.write_text(
        json.dumps(
            {"measured_at": datetime.now(UTC).isoformat(), "runs": [asdict(r) for r in runs]}, indent=2
        )
    )
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
