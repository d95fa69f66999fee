"""``spendsense``: run the embedded stack and operate the bus. ``spendsense COMMAND --help`` for details."""

from __future__ import annotations

import json
import os
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# Imported where used, not here: `spendsense analyze` starts in a fraction of the time without the stack,
# the HTTP client and the event catalog (~0.25 s of CPU).
if TYPE_CHECKING:
    from spendsense_cli import stack


app = typer.Typer(help="SpendSense: explainable, consent-aware financial education.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter queues: inspect and re-drive.", no_args_is_help=True)
events_app = typer.Typer(help="The event catalog.", no_args_is_help=True)
infra_app = typer.Typer(help="Infrastructure declarations (bus topology, routes).", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(events_app, name="events")
traces_app = typer.Typer(
    help="Decision traces: verify the hash chain and replay decisions.", no_args_is_help=True
)
app.add_typer(infra_app, name="infra")
app.add_typer(traces_app, name="traces")

StateDir = Annotated[
    Path, typer.Option(envvar="SPENDSENSE_STATE_DIR", help="Where the stack keeps data and logs")
]


def _config(state_dir: Path, **ports: int) -> stack.StackConfig:
    from spendsense_cli import stack

    config = stack.StackConfig(state_dir=state_dir)
    for name, port in ports.items():
        setattr(config, name, port)
    return config


@app.command()
def up(
    state_dir: StateDir = Path(".spendsense"),
    gateway_port: Annotated[int, typer.Option(help="Gateway port")] = 8000,
    service_base_port: Annotated[int, typer.Option(help="First service port (five consecutive)")] = 8001,
    postgres_port: Annotated[int, typer.Option(help="PostgreSQL port")] = 15432,
    redis_port: Annotated[int, typer.Option(help="Redis port")] = 16379,
    aws_port: Annotated[int, typer.Option(help="AWS emulator port")] = 15566,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for readiness (generous: a busy machine is slower)")
    ] = 300,
    launch: Annotated[
        str | None,
        typer.Option(
            help="fork: import the code once and fork every service (fast; the default on Linux); "
            "spawn: each service its own interpreter (slower; the default elsewhere)"
        ),
    ] = None,
) -> None:
    """Start PostgreSQL, Redis, the AWS emulator, the five services, their workers and the gateway."""
    from spendsense_cli import stack

    if launch not in (None, "fork", "spawn"):
        raise typer.BadParameter("--launch: fork or spawn")
    config = _config(
        state_dir,
        gateway_port=gateway_port,
        service_base_port=service_base_port,
        postgres_port=postgres_port,
        redis_port=redis_port,
        aws_port=aws_port,
    )
    if launch:
        config.launch = launch
    try:
        manifest = stack.up(config, progress=lambda m: typer.echo(f"» {m}", err=True), timeout=timeout)
    except (RuntimeError, TimeoutError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    _print_up(config, manifest)
    typer.echo("\nStop it with `spendsense down`.")


def _print_up(config: stack.StackConfig, manifest: dict[str, object]) -> None:
    from spendsense_shared.messaging.catalog import SERVICES

    urls: dict[str, str] = manifest["urls"]  # type: ignore[assignment]
    typer.echo(f"\nSpendSense is up (ready in {manifest.get('ready_after_s', '?')} s).\n")
    typer.echo(f"  web app          {urls['gateway']}/   (users and operators; sign in as the admin below)")
    typer.echo(f"  gateway          {urls['gateway']}/api/v1/…   health: {urls['gateway']}/api/v1/health")
    for service in SERVICES:
        typer.echo(f"  {service:<16} {urls[service]}   docs: {urls[service]}/docs")
    typer.echo(f"  postgresql       {urls['database']}")
    typer.echo(f"  redis            {urls['redis']}")
    typer.echo(f"  aws emulator     {urls['aws']}  (SNS, SQS, S3, SMS)")
    typer.echo(f"  logs             {config.state_dir / 'logs'}/")
    email, password = config.admin_credentials()
    typer.echo(f"  admin            {email} / {password}")
    typer.echo(f"                   (sign in: POST {urls['gateway']}/api/v1/auth/login)")


@app.command()
def smoke(
    state_dir: StateDir = Path(".spendsense"),
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each event")] = 30,
) -> None:
    """Run the smoke flow through the running stack (consent events followed through every worker)."""
    from spendsense_cli import stack
    from spendsense_cli.smoke import run_smoke

    config = _config(state_dir)
    manifest = stack.read_manifest(config)
    if not manifest:
        typer.echo("error: the stack is not running (`spendsense up`)", err=True)
        raise typer.Exit(1)
    _load_stack_env(state_dir)
    try:
        run_smoke(manifest["urls"]["gateway"], config.state_dir, progress=typer.echo, timeout=timeout)  # type: ignore[index]
    except (RuntimeError, TimeoutError) as exc:
        typer.echo(f"smoke flow failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo("smoke flow passed")


UPLOAD_CONCURRENCY = "SPENDSENSE_UPLOAD_JOB_CONCURRENCY"


@app.command()
def demo(
    state_dir: StateDir = Path(".spendsense"),
    users: Annotated[int, typer.Option(min=6, help="Synthetic users to push through the pipeline")] = 100,
    seed: Annotated[int, typer.Option(help="Generator seed")] = 7,
    out: Annotated[
        Path | None, typer.Option(help="Evaluation output folder (default: <state-dir>/evaluation)")
    ] = None,
    gateway_port: Annotated[int, typer.Option(help="Gateway port (when the demo starts the stack)")] = 8000,
    service_base_port: Annotated[int, typer.Option(help="First service port (five consecutive)")] = 8001,
    postgres_port: Annotated[int, typer.Option(help="PostgreSQL port")] = 15432,
    redis_port: Annotated[int, typer.Option(help="Redis port")] = 16379,
    aws_port: Annotated[int, typer.Option(help="AWS emulator port")] = 15566,
) -> None:
    """Start the stack (unless it runs), sign synthetic users up, let each consent and upload their data,
    follow them through the pipeline, review by the demo policy, evaluate, and say where to look."""
    import httpx

    from spendsense_cli import stack
    from spendsense_cli.evaluation.runner import evaluate_stack, summary_lines
    from spendsense_cli.pipeline_demo import run_pipeline_demo, sample_items

    began = time.monotonic()
    config = _config(
        state_dir,
        gateway_port=gateway_port,
        service_base_port=service_base_port,
        postgres_port=postgres_port,
        redis_port=redis_port,
        aws_port=aws_port,
    )
    # A hundred users upload at once: the demo's stack parses three uploads at a time (unless set otherwise).
    config.extra_env[UPLOAD_CONCURRENCY] = os.environ.get(UPLOAD_CONCURRENCY, "3")
    manifest = stack.read_manifest(config)
    processes = stack.status(config) if manifest else []
    if manifest and processes and all(p["alive"] for p in processes):
        typer.echo("» the stack is running: reusing it", err=True)
    else:
        if manifest:
            stack.down(config, progress=lambda m: None)
        try:
            manifest = stack.up(config, progress=lambda m: typer.echo(f"» {m}", err=True))
        except (RuntimeError, TimeoutError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    assert manifest is not None
    _load_stack_env(state_dir)
    gateway = str(manifest["urls"]["gateway"])  # type: ignore[index]
    typer.echo(
        f"\n» pipeline: {users} synthetic users sign up → consent → upload their data → features → "
        "recommender → operator review"
    )
    try:
        result = run_pipeline_demo(
            gateway,
            config.state_dir,
            admin=config.admin_credentials(),
            users=users,
            seed=seed,
            progress=lambda m: typer.echo(f"  {m}"),
        )
        typer.echo(
            f"  {result.users} users ({result.transactions:,} transactions): every upload recommended "
            f"{result.seconds_to_recommended} s after the first was sent; review (demo policy): "
            f"{result.review.approved} approved, {result.review.rejected} rejected"
        )
        typer.echo("\n» evaluation: read back through the gateway as the admin")
        evaluation = evaluate_stack(
            gateway,
            config.admin_credentials(),
            out or config.state_dir / "evaluation",
            labels=result.labels_path,
            say=lambda m: typer.echo(f"  {m}"),
        )
    except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
        typer.echo(f"demo failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    _print_sample(sample_items(gateway, result))
    for line in summary_lines(evaluation):
        typer.echo(line)
    _print_where(config, manifest)
    typer.echo(
        f"\nDemo done in {time.monotonic() - began:.0f} s. "
        "The stack keeps running: `spendsense down` stops it."
    )


def _print_sample(sample: dict[str, object]) -> None:
    items: list[dict[str, str]] = sample["items"]  # type: ignore[assignment]
    typer.echo(f"\n  {sample['user_id']} ({sample['persona']}) sees {len(items)} approved items, e.g.:")
    for item in items[:3]:
        typer.echo(f"   • [{item['kind']}] {item['title']}\n     why: {item['rationale']}")
    if items:
        typer.echo(f"     {items[0]['disclosure']}")


def _print_where(config: stack.StackConfig, manifest: dict[str, object]) -> None:
    from spendsense_shared.messaging.catalog import SERVICES

    urls: dict[str, str] = manifest["urls"]  # type: ignore[assignment]
    gateway_url = urls["gateway"]
    admin_email, admin_password = config.admin_credentials()
    typer.echo("\nWhere to look:")
    typer.echo(f"  web app         {gateway_url}/   (review queue: {gateway_url}/operator/review)")
    typer.echo(f"                  sign in as the admin: {admin_email} / {admin_password}")
    for service in SERVICES:
        typer.echo(f"  API docs        {urls[service]}/docs   ({service})")
    typer.echo(f"  logs            {config.state_dir / 'logs'}/")
    typer.echo("  dead letters    spendsense dlq list <service>")


@app.command("eval")
def evaluate(
    offline: Annotated[
        Path | None,
        typer.Option(
            "--offline",
            exists=True,
            dir_okay=False,
            help="Evaluate this data file in-process (JSON Lines or JSON) instead of the running stack",
        ),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help='Ground truth, JSON Lines {"user_id", "persona", "age_band"?, "region"?, "income_band"?}',
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("build/evaluation"),
    processes: Annotated[
        int, typer.Option(min=1, help="Offline: processes sharing the users (default: one per core)")
    ] = os.cpu_count() or 1,
    state_dir: StateDir = Path(".spendsense"),
) -> None:
    """Coverage, explainability, relevance, latency, fairness, auditability and persona accuracy (SPEC §8):
    metrics.json, metrics.csv, report.html, report.md and traces/ in --out."""
    import httpx

    from spendsense_cli import stack
    from spendsense_cli.evaluation.runner import evaluate_offline, evaluate_stack, summary_lines

    def say(message: str) -> None:
        typer.echo(f"  {message}", err=True)

    try:
        if offline is not None:
            result = evaluate_offline(offline, out, labels=labels, processes=processes, say=say)
        else:
            config = _config(state_dir)
            manifest = stack.read_manifest(config)
            if not manifest:
                typer.echo(
                    "error: the stack is not running (`spendsense up`), and no --offline FILE", err=True
                )
                raise typer.Exit(1)
            _load_stack_env(state_dir)
            gateway = str(manifest["urls"]["gateway"])  # type: ignore[index]
            result = evaluate_stack(gateway, config.admin_credentials(), out, labels=labels, say=say)
    except (ValueError, RuntimeError, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for line in summary_lines(result):
        typer.echo(line)


@app.command()
def down(state_dir: StateDir = Path(".spendsense")) -> None:
    """Stop every process of the embedded stack."""
    from spendsense_cli import stack

    stopped = stack.down(_config(state_dir), progress=lambda m: typer.echo(f"» {m}", err=True))
    typer.echo(f"stopped {stopped} processes" if stopped else "nothing was running")


@app.command()
def status(state_dir: StateDir = Path(".spendsense")) -> None:
    """Show what the embedded stack runs and whether the services are ready."""
    from spendsense_cli import stack

    config = _config(state_dir)
    processes = stack.status(config)
    if not processes:
        typer.echo("not running")
        raise typer.Exit(1)
    for proc in processes:
        state = "running" if proc["alive"] else "STOPPED"
        restarts = int(proc.get("restarts", 0))  # type: ignore[call-overload]
        typer.echo(
            f"  {proc['name']:<22} pid {proc['pid']:<8} {state:<8}"
            + (f" restarted {restarts} times" if restarts else "")
        )
    manifest = stack.read_manifest(config) or {}
    gateway = manifest.get("urls", {}).get("gateway")  # type: ignore[attr-defined]
    ready = bool(gateway) and stack.http_ok(f"{gateway}/api/v1/health")
    typer.echo(f"services ready: {'yes' if ready else 'no'}")
    if not ready or not all(p["alive"] for p in processes):
        raise typer.Exit(1)


@app.command()
def restart(
    name: Annotated[str, typer.Argument(help="A process of the stack: SERVICE, SERVICE-worker, gateway, …")],
    state_dir: StateDir = Path(".spendsense"),
) -> None:
    """Stop one process of the embedded stack and have its supervisor start it again at once."""
    from spendsense_cli import stack

    try:
        entry = stack.restart(_config(state_dir), name)
    except LookupError as exc:
        raise typer.BadParameter(str(exc)) from exc
    except (RuntimeError, TimeoutError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{name} restarted: pid {entry['pid']} (restarts so far: {entry.get('restarts', 0)})")


def _load_stack_env(state_dir: Path) -> None:
    """Commands that talk to the stack use its settings unless the environment already sets them."""
    from spendsense_cli import stack

    manifest = stack.read_manifest(_config(state_dir)) or {}
    for key, value in dict(manifest.get("env", {})).items():  # type: ignore[call-overload]
        os.environ.setdefault(key, value)


@app.command()
def migrate(
    service: Annotated[list[str] | None, typer.Option(help="Only these services")] = None,
    revision: Annotated[str, typer.Option(help="Target revision")] = "head",
    state_dir: StateDir = Path(".spendsense"),
) -> None:
    """Apply each service's Alembic migrations to its own schema (SPENDSENSE_DATABASE_URL)."""
    from spendsense_shared.messaging.catalog import SERVICES
    from spendsense_shared.migrations import upgrade
    from spendsense_shared.settings import ServiceSettings

    _load_stack_env(state_dir)
    url = ServiceSettings().database_url.get_secret_value()
    for name in service or list(SERVICES):
        if name not in SERVICES:
            raise typer.BadParameter(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
        upgrade(f"spendsense_{name}", url, name, revision)
        typer.echo(f"{name}: at {revision}")


@app.command()
def provision(state_dir: StateDir = Path(".spendsense")) -> None:
    """Create the declared topics, queues, DLQs, subscriptions and buckets (idempotent)."""
    import asyncio

    from spendsense_shared.aws import Aws
    from spendsense_shared.messaging.provision import provision as run
    from spendsense_shared.messaging.topology import build_topology
    from spendsense_shared.settings import ServiceSettings

    _load_stack_env(state_dir)
    settings = ServiceSettings()
    typer.echo(json.dumps(asyncio.run(run(Aws(settings), build_topology(settings.env)))))


def _queue(service: str) -> tuple[object, object]:
    import asyncio

    from spendsense_shared.aws import Aws
    from spendsense_shared.messaging.provision import queue_address
    from spendsense_shared.messaging.topology import build_topology
    from spendsense_shared.settings import ServiceSettings

    settings = ServiceSettings()
    topology = build_topology(settings.env)
    if service not in topology.queues:
        raise typer.BadParameter(f"{service!r} has no queue; one of {', '.join(topology.queues)}")
    aws = Aws(settings)
    return aws, asyncio.run(queue_address(aws, topology.queues[service].name))


@dlq_app.command("list")
def dlq_list(
    service: Annotated[str, typer.Argument(help="The consuming service")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Dead letters per page")] = 10,
    page: Annotated[int, typer.Option(min=1, help="Which page (1: the first)")] = 1,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type")] = None,
    state_dir: StateDir = Path(".spendsense"),
) -> None:
    """Show dead letters with the recorded error (without removing them), a page at a time, and how many
    the DLQ holds."""
    import asyncio

    from spendsense_shared.messaging.consumer import dead_letter_count, peek_dead_letters

    _load_stack_env(state_dir)
    aws, address = _queue(service)

    async def run() -> None:
        async with aws.client("sqs") as sqs:  # type: ignore[attr-defined]
            total = await dead_letter_count(sqs, address.dlq_url)  # type: ignore[attr-defined]
            # Read up to the end of the page (all of them to filter by type), each once; show the page.
            want = total if event_type else min(total, page * limit)
            letters = await peek_dead_letters(sqs, address.dlq_url, max(1, want))  # type: ignore[attr-defined]
        if event_type is not None:
            letters = [letter for letter in letters if letter.event_type == event_type]
        shown = letters[(page - 1) * limit : page * limit]
        for letter in shown:
            typer.echo(json.dumps(letter.__dict__))
        of_type = f" of type {event_type}" if event_type else ""
        typer.echo(
            f"page {page}: {len(shown)} dead letters{of_type} shown; the DLQ holds {total}"
            + (f" (more: --page {page + 1})" if total > page * limit else ""),
            err=True,
        )

    asyncio.run(run())


@dlq_app.command("redrive")
def dlq_redrive(
    service: Annotated[str, typer.Argument(help="The consuming service")],
    max_messages: Annotated[int | None, typer.Option(min=1, help="Move at most this many")] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Only dead letters of this event type")
    ] = None,
    state_dir: StateDir = Path(".spendsense"),
) -> None:
    """Move dead letters back to the service's queue (after the fix is deployed): each at most once (one
    that fails again stays in the DLQ for the next re-drive), and say which moved."""
    import asyncio

    from spendsense_shared.messaging.consumer import Redriven, redrive_messages

    _load_stack_env(state_dir)
    aws, address = _queue(service)

    async def run() -> Redriven:
        async with aws.client("sqs") as sqs:  # type: ignore[attr-defined]
            return await redrive_messages(sqs, address.dlq_url, address.url, max_messages, event_type)  # type: ignore[attr-defined]

    result = asyncio.run(run())
    for message_id, moved_type in result.moved:
        typer.echo(json.dumps({"message_id": message_id, "event_type": moved_type}))
    per_type = ", ".join(f"{n} {t}" for t, n in sorted(result.by_type().items())) or "nothing"
    left = f"; {result.skipped} of other types left in the DLQ" if result.skipped else ""
    typer.echo(f"re-drove {len(result.moved)} messages to {service} ({per_type}){left}", err=True)


def analyze_file(path: Path, as_of: date | None = None) -> list[dict[str, Any]]:
    """The reports of a file (see :mod:`spendsense_cli.analyze`). Raises ValueError listing every problem."""
    from spendsense_cli.analyze import analyze_file as run

    return run(path, as_of)


@app.command()
def analyze(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Upload file (JSON, JSONL, CSV, zip)")
    ],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="YYYY-MM-DD; default: each user's latest date")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="json or table")] = "json",
    pretty: Annotated[bool, typer.Option("--pretty", help="Indent the JSON (default: compact)")] = False,
    processes: Annotated[
        int, typer.Option(min=1, help="Processes sharing the users (default: one per core)")
    ] = os.cpu_count() or 1,
) -> None:
    """Compute signals and personas for a file, offline, with the same code the services run."""
    from spendsense_cli.console import run_analyze

    if output not in ("json", "table"):
        raise typer.BadParameter("--format must be json or table")
    try:
        date.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise typer.BadParameter(f"--as-of: {exc}") from exc
    code = run_analyze(file, as_of, output, pretty, processes)
    if code:
        raise typer.Exit(code)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Output JSON Lines file (labels go beside it)")] = Path(
        "users.jsonl"
    ),
    users: Annotated[int, typer.Option(min=1, help="How many users")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data)")] = 0,
) -> None:
    """Write realistic synthetic Plaid-convention data with ground-truth personas and demographics."""
    from spendsense_cli.synthetic import generate as run

    summary = run(users=users, seed=seed, out=out)
    typer.echo(f"wrote {summary.users} users, {summary.transactions} transactions to {summary.path}")
    typer.echo(f"labels: {summary.labels_path}; personas: {summary.persona_counts}")


@app.command()
def backup(
    out: Annotated[
        Path | None, typer.Option(help="Directory to write (default: STATE_DIR/backups/<UTC time>)")
    ] = None,
    state_dir: StateDir = Path(".spendsense"),
) -> None:
    """Back up the running stack: every service's schema (one snapshot) and the data and reports buckets,
    with a manifest of sizes and SHA-256 checksums."""
    from spendsense_cli import backup as backups

    try:
        backups.backup(_config(state_dir), out, progress=lambda m: typer.echo(f"» {m}", err=True))
    except backups.BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(help="A directory `spendsense backup` wrote")],
    republish_window: Annotated[
        float, typer.Option(help="Seconds before the backup point whose published events are sent again")
    ] = 900,
    state_dir: StateDir = Path(".spendsense"),
) -> None:
    """Bring the running stack back to a backup (its processes are paused meanwhile, not restarted)."""
    from spendsense_cli import backup as backups

    try:
        report = backups.restore(
            _config(state_dir),
            source,
            progress=lambda m: typer.echo(f"» {m}", err=True),
            republish_window_s=republish_window,
        )
    except backups.BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(report, indent=2))


@traces_app.command("verify")
def traces_verify(
    user_id: Annotated[str, typer.Argument(help="Whose traces")],
    state_dir: StateDir = Path(".spendsense"),
) -> None:
    """Verify a user's trace chain and replay every decision (signed in as the stack's admin, through the
    gateway)."""
    import httpx

    from spendsense_cli import stack
    from spendsense_cli.accounts import SignInFailed, login

    config = _config(state_dir)
    manifest = stack.read_manifest(config)
    if not manifest:
        typer.echo("error: the stack is not running (`spendsense up`)", err=True)
        raise typer.Exit(1)
    _load_stack_env(state_dir)
    gateway = str(manifest["urls"]["gateway"])  # type: ignore[index]
    with httpx.Client(base_url=gateway, timeout=30) as client:
        try:
            client.headers.update(login(client, *config.admin_credentials()).headers())
        except SignInFailed as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        listing = client.get(f"/api/v1/recommendations/{user_id}/traces", params={"limit": 200})
        if listing.status_code != 200:
            typer.echo(f"error: {listing.status_code} {listing.text}", err=True)
            raise typer.Exit(1)
        body = listing.json()
        replays = [
            client.get(f"/api/v1/recommendations/{user_id}/traces/{t['recommendation_id']}").json()["replay"]
            for t in body["items"]
        ]
    chain = body["chain"]
    typer.echo(f"chain: {'intact' if chain['ok'] else 'BROKEN'} ({chain['checked']} traces)")
    if not chain["ok"]:
        typer.echo(f"  first break at #{chain['broken_at']} ({chain['trace_id']}): {chain['reason']}")
    mismatched = [r for r in replays if not r["matches"]]
    typer.echo(f"replay: {len(replays) - len(mismatched)}/{len(replays)} decisions reproduce")
    for result in mismatched:
        typer.echo(f"  differs: {'; '.join(result['differences'])}")
    if not chain["ok"] or mismatched:
        raise typer.Exit(1)


@events_app.command("docs")
def events_docs(out: Annotated[Path, typer.Option(help="Where to write")] = Path("docs/events.md")) -> None:
    """Write the event catalog's documentation."""
    from spendsense_shared.messaging.catalog import render_markdown

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown())
    typer.echo(f"wrote {out}")


@infra_app.command("bus-json")
def bus_json(env: Annotated[str, typer.Option(help="Environment name")] = "dev") -> None:
    """Print the bus topology (topics, queues, DLQs, subscriptions, buckets) as JSON, for Terraform."""
    from spendsense_shared.messaging.topology import build_topology

    typer.echo(build_topology(env).to_json())


@infra_app.command("routes")
def routes() -> None:
    """Print the gateway route table (the same table API Gateway gets)."""
    from spendsense_shared.gateway.routes import ROUTES

    typer.echo(json.dumps([{"route_key": r.route_key, "service": r.service} for r in ROUTES], indent=2))


@app.command()
def token(
    subject: Annotated[str, typer.Argument(help="User id (sub claim)")],
    role: Annotated[list[str] | None, typer.Option(help="Role(s): user, operator, admin")] = None,
    ttl: Annotated[int, typer.Option(help="Seconds")] = 3600,
    state_dir: StateDir = Path(".spendsense"),
) -> None:
    """Mint an access token with the embedded stack's key (development only)."""
    from spendsense_shared.jwk import SigningKey
    from spendsense_shared.settings import ServiceSettings

    config = _config(state_dir)
    if not config.key_file.exists():
        raise typer.BadParameter(f"no key at {config.key_file}: start the stack first (`spendsense up`)")
    settings = ServiceSettings()
    key = SigningKey.from_pem(config.key_file.read_bytes())
    typer.echo(
        key.sign(
            subject,
            roles=role or ["user"],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_s=ttl,
        )
    )


if __name__ == "__main__":
    app()
