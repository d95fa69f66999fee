"""One evaluation run: users evaluated one at a time (their traces written as they come), the metrics
folded in, then the files written. Progress is reported every couple of seconds on long runs."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spendsense_cli.evaluation.metrics import Metrics
from spendsense_cli.evaluation.offline import Evaluated, label_one, read_labels, run_offline
from spendsense_cli.evaluation.records import decisions_shared_between_replays
from spendsense_cli.evaluation.report import TraceWriter, write_all

Say = Callable[[str], None]
PROGRESS_EVERY_S = 2.0


@dataclass(frozen=True)
class RunResult:
    metrics: dict[str, Any]
    files: dict[str, Path]
    seconds: float


class ProgressLine:
    """ "n/total users (rate/s)" at most every ``PROGRESS_EVERY_S`` seconds, and at the end."""

    def __init__(self, say: Say, what: str = "users evaluated") -> None:
        self.say = say
        self.what = what
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_S and done != total:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        of = f"/{total:,}" if total else ""
        eta = (
            f", about {(total - done) / (done / elapsed):.0f} s left"
            if total and done and done < total
            else ""
        )
        self.say(f"{done:,}{of} {self.what} ({done / elapsed:.1f}/s{eta})")


def _run_meta(source: str, started: float, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 2),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
        },
        "source": source,
        **extra,
    }


def evaluate_offline(
    data: Path, out: Path, *, labels: Path | None = None, processes: int = 1, say: Say = print
) -> RunResult:
    started = time.monotonic()
    truth = read_labels(labels)
    metrics = Metrics(source="offline", labelled=bool(truth))
    traces = TraceWriter(out)

    def on_user(evaluated: Evaluated) -> None:
        metrics.add(evaluated.outcome)
        traces.write(evaluated.outcome.user_id, evaluated.traces)

    run_offline(data, truth, on_user, ProgressLine(say), processes=processes)
    document = metrics.result()
    document["run"] = _run_meta(
        "offline",
        started,
        {
            "input": str(data),
            "labels": str(labels) if labels else None,
            "processes": processes,
            "traces": traces.written,
        },
    )
    files = write_all(out, document)
    return RunResult(document, files, round(time.monotonic() - started, 2))


def evaluate_stack(
    gateway: str,
    admin: tuple[str, str],
    out: Path,
    *,
    labels: Path | None = None,
    users: list[str] | None = None,
    say: Say = print,
    concurrency: int = 6,
) -> RunResult:
    """Reads every user (``users``, else those of ``labels``, else everyone in the review queue) from the
    running stack through the gateway, signed in as ``admin``."""
    from spendsense_cli.evaluation.stack import StackReader, signed_in_headers

    started = time.monotonic()
    truth = read_labels(labels)
    reader = StackReader(gateway, signed_in_headers(gateway, *admin), concurrency=concurrency)
    chosen = users or list(truth) or reader.queue_users()
    metrics = Metrics(source="stack", labelled=bool(truth))
    traces = TraceWriter(out)
    progress = ProgressLine(say, "users read from the stack")
    with decisions_shared_between_replays():
        for done, evaluated in enumerate(reader.evaluate_all(chosen), start=1):
            evaluated = label_one(evaluated, truth)
            metrics.add(evaluated.outcome)
            traces.write(evaluated.outcome.user_id, evaluated.traces)
            progress(done, len(chosen))
    document = metrics.result()
    document["run"] = _run_meta(
        "stack",
        started,
        {
            "input": gateway,
            "labels": str(labels) if labels else None,
            "processes": 1,
            "traces": traces.written,
        },
    )
    files = write_all(out, document)
    return RunResult(document, files, round(time.monotonic() - started, 2))


def summary_lines(result: RunResult) -> list[str]:
    """The short table a terminal shows, and where the files are."""
    from spendsense_cli.evaluation.report import headline

    rows = headline(result.metrics)
    width = max(len(label) for label, *_ in rows)
    lines = [f"\nEvaluation ({result.metrics['source']}, {result.seconds:.1f} s)"]
    lines += [f"  {label:<{width}}  {shown:>18}   {note}" for label, _, shown, note in rows]
    flags = [f for f in result.metrics["fairness"]["flags"] if f["significant"]]
    for flag in flags[:5]:
        lines.append(
            f"  ! {flag['attribute']}: {flag['outcome']} ratio {flag['ratio']:.2f} "
            f"({flag['lowest']} vs {flag['highest']}, p = {flag['p_value']})"
        )
    folder = result.files["html"].parent
    lines.append(f"\n  report   {result.files['html']}")
    lines.append(f"  metrics  {result.files['json']}, {result.files['csv']}, {result.files['markdown']}")
    lines.append(f"  traces   {folder / 'traces'}/ ({result.metrics['run']['traces']:,} users)")
    return lines
