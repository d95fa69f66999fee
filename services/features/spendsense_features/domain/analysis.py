"""One entry point from normalized tables to the public analysis report: used by the worker (an
``upload.ingested`` event), by batch re-scoring and by ``spendsense analyze`` (which parses a file with
the profile service's parser first: the composition happens in the CLI, not here)."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Collection, Iterable, Mapping
from datetime import date
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spendsense_features.domain.dataset import Dataset
from spendsense_features.domain.report import _COUNTS, REQUIRED_SIGNALS, analysis_report, json_safe
from spendsense_features.domain.rules import RuleSet, assign_personas
from spendsense_features.domain.signals import compute_signals


def analyze(
    tables: Mapping[str, pa.Table],
    rule_set: RuleSet,
    user_ids: Collection[str] | None = None,
    as_of: date | Mapping[str, date] | None = None,
) -> list[dict[str, Any]]:
    """Signals for both windows and personas, for every user in ``tables`` (or only ``user_ids``): the
    reports of :func:`analysis_report`, built as :func:`report_items` encodes them and parsed back (the
    same values, without ``json_safe``'s walk over every one: a twentieth of the worker's analysis)."""
    return [orjson.loads(body) for _, body in analyze_encoded(tables, rule_set, user_ids, as_of)]


def analyze_encoded(
    tables: Mapping[str, pa.Table],
    rule_set: RuleSet,
    user_ids: Collection[str] | None = None,
    as_of: date | Mapping[str, date] | None = None,
) -> list[tuple[str, bytes]]:
    """:func:`analyze`'s reports, each as ``(user_id, JSON bytes)``: what another process sends back."""
    return report_items(*_signals(tables, rule_set, user_ids, as_of))


def _signals(
    tables: Mapping[str, pa.Table],
    rule_set: RuleSet,
    user_ids: Collection[str] | None,
    as_of: date | Mapping[str, date] | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if user_ids is not None:
        keep = pa.array(sorted(user_ids), type=pa.string())
        tables = {name: t.filter(pc.is_in(t["user_id"], value_set=keep)) for name, t in tables.items()}
    signals = compute_signals(Dataset.from_arrow(tables), as_of=as_of)
    return signals, assign_personas(signals, rule_set)


def analyze_json(
    tables: Mapping[str, pa.Table],
    rule_set: RuleSet,
    *,
    as_of: date | Mapping[str, date] | None = None,
    processes: int = 1,
    pretty: bool = False,
) -> bytes:
    """:func:`analyze` as one JSON array (``orjson``; indented with ``pretty``).

    With ``processes`` > 1 the users are split into that many runs of about the same number of
    transactions; this process analyzes the first while forked copies of it (which share the tables
    without copying them) analyze the others. Reports come in the order :func:`analyze` gives (by user
    id) and are the same whichever the split: a user's signals depend on that user's rows only."""
    # imported here: a one-process run (every upload's analysis in the worker) needs neither, and
    # ``spendsense analyze`` starts faster without them
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = _user_chunks(tables, processes)
    if len(chunks) == 1 or "fork" not in multiprocessing.get_all_start_methods():
        encoded = [_encoded(tables, rule_set, as_of)]
    else:
        _SHARED.update(tables=tables, rule_set=rule_set, as_of=as_of)
        try:
            with warnings.catch_warnings():  # forking a process that has (idle) Arrow threads: see _chunk
                warnings.simplefilter("ignore", DeprecationWarning)
                context = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(len(chunks) - 1, mp_context=context) as pool:
                    futures = [pool.submit(_chunk, users) for users in chunks[1:]]
                    encoded = [_chunk(chunks[0])] + [future.result() for future in futures]
        finally:
            _SHARED.clear()
    body = b"[" + b",".join(part[1:-1] for part in encoded if len(part) > 2) + b"]"
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) if pretty else body


# What the forked processes of analyze_json read (they are copies of the parent: nothing is pickled but
# the user ids of their run and the JSON they send back). Arrow restarts its thread pools in a child.
_SHARED: dict[str, Any] = {}


def _chunk(users: pa.Array) -> bytes:
    return _encoded(_only(_SHARED["tables"], users), _SHARED["rule_set"], _SHARED["as_of"])


def _encoded(tables: Mapping[str, pa.Table], rule_set: RuleSet, as_of: Any) -> bytes:
    return reports_json(*_signals(tables, rule_set, None, as_of))


def encoded_reports(
    tables: Mapping[str, pa.Table], rule_set: RuleSet, *, as_of: date | Mapping[str, date] | None = None
) -> list[tuple[str, bytes]]:
    """:func:`analyze`'s reports, each encoded apart as ``(user_id, JSON bytes)``, in its order (by user
    id): what a process that analyzed part of an upload hands back to be merged (:func:`joined_reports`)."""
    return report_items(*_signals(tables, rule_set, None, as_of))


def joined_reports(items: Iterable[tuple[str, bytes]], *, pretty: bool = False) -> bytes:
    """Reports encoded apart (:func:`encoded_reports`) as the one JSON array :func:`analyze_json` writes:
    orjson's compact array is its items joined by commas, so the bytes are those of one ``dumps``."""
    body = b"[" + b",".join(encoded for _, encoded in items) + b"]"
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) if pretty else body


def reports_json(signals: pd.DataFrame, personas: pd.DataFrame) -> bytes:
    """``orjson.dumps(analysis_report(signals, personas))``, the same bytes (see :func:`report_items`)."""
    return joined_reports(report_items(signals, personas))


def report_items(signals: pd.DataFrame, personas: pd.DataFrame) -> list[tuple[str, bytes]]:
    """Each report of ``analysis_report(signals, personas)`` as ``(user_id, orjson.dumps(report))``, the
    same bytes, without the per-value walk: numbers and flags go to Python a column at a time, and orjson
    serializes the rest as it is, handing back (``default``) only what ``json_safe`` has to turn into
    plain JSON (numpy scalars, dates, timestamps, NaT). orjson writes a non-finite float as null, as
    ``json_safe`` makes it. A value orjson cannot take even so (a dict with keys that are not strings)
    sends the whole through the walk."""
    keys = [str(k) for k in signals.columns]
    grouped = [(k, g, name) for k in keys for g, _, name in [k.partition(".")] if name]
    extra = [g for g in dict.fromkeys(g for _, g, _ in grouped) if g not in REQUIRED_SIGNALS]
    groups = [*REQUIRED_SIGNALS, *extra]
    for group, required in REQUIRED_SIGNALS.items():
        names = {name for _, g, name in grouped if g == group}
        missing = [name for name in required if name not in names]
        if missing:
            raise ValueError(f"signals lack {group}.{missing[0]}: not a compute_signals() frame")
    columns = [(group, name, _column(signals[key], key in _COUNTS)) for key, group, name in grouped]
    persona_by_key = {
        (str(u), str(w)): (p, m)
        for u, w, p, m in zip(
            personas["user_id"], personas["window"], personas["primary"], personas["matched"], strict=True
        )
    }
    as_of = [json_safe(v) for v in signals["as_of"].tolist()] if "as_of" in keys else [None] * len(signals)
    users = [str(u) for u in signals["user_id"].tolist()]
    windows = [str(w) for w in signals["window"].tolist()]
    reports: dict[str, dict[str, Any]] = {}
    for row, (user_id, window) in enumerate(zip(users, windows, strict=True)):
        report = reports.get(user_id)
        if report is None:
            report = reports[user_id] = {"user_id": user_id, "as_of": None, "windows": {}}
        if report["as_of"] is None:
            report["as_of"] = as_of[row]
        primary, matched = persona_by_key.get((user_id, window), (None, []))
        out: dict[str, dict[str, Any]] = {group: {} for group in groups}
        for group, name, column in columns:
            out[group][name] = column[row]
        report["windows"][window] = {"persona": {"primary": primary, "matched": matched}, "signals": out}
    try:
        return [
            (user_id, orjson.dumps(report, default=json_safe, option=orjson.OPT_PASSTHROUGH_DATETIME))
            for user_id, report in reports.items()
        ]
    except TypeError:
        return [(report["user_id"], orjson.dumps(report)) for report in analysis_report(signals, personas)]


def _column(series: pd.Series, count: bool) -> list[Any]:
    """A column's values for orjson: floats (a non-finite one is written null), a count as an integer
    or None, and any other column as it is (orjson and ``json_safe`` take care of its values)."""
    kind = series.dtype.kind
    if kind == "f":
        numbers = series.to_numpy(dtype=np.float64).tolist()
        if count:
            return [int(v) if math.isfinite(v) else None for v in numbers]
        return numbers
    if kind in "biu":
        return series.to_numpy().tolist()
    if count:
        return [int(v) if isinstance(v, float) and math.isfinite(v) else v for v in series.tolist()]
    return series.tolist()


def _only(tables: Mapping[str, pa.Table], users: pa.Array) -> dict[str, pa.Table]:
    return {name: t.filter(pc.is_in(t["user_id"], value_set=users)) for name, t in tables.items()}


def _user_chunks(tables: Mapping[str, pa.Table], parts: int) -> list[pa.Array]:
    """The user ids in ``parts`` runs (in report order, by id) of about equal transaction counts."""
    ids = pc.unique(pa.chunked_array([t["user_id"] for t in tables.values()], pa.string()))
    ids = pc.take(ids, pc.sort_indices(ids))
    if parts <= 1 or len(ids) < 2:
        return [ids]
    counts = pc.value_counts(tables["transactions"]["user_id"])
    per_user = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))
    weight = np.cumsum([per_user.get(u, 0) + 1 for u in ids.to_pylist()])
    cuts = np.searchsorted(weight, weight[-1] * np.arange(1, parts) / parts)
    bounds = [0, *sorted(set(int(c) + 1 for c in cuts)), len(ids)]
    return [ids[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def render_table(reports: list[dict[str, Any]]) -> str:
    """A compact human view: one line per user and window."""
    header = f"{'user_id':<24}{'window':<8}{'persona':<26}{'util':>7}{'subs':>6}{'pay gap':>9}{'buffer':>8}"
    lines = [header, "-" * len(header)]
    for report in reports:
        for window, result in report["windows"].items():
            s = result["signals"]
            lines.append(
                f"{report['user_id']:<24}{window:<8}{result['persona']['primary']:<26}"
                f"{_fmt(s['credit']['max_utilization'], '{:.0%}'):>7}"
                f"{_fmt(s['subscriptions']['recurring_merchant_count'], '{}'):>6}"
                f"{_fmt(s['income']['median_pay_gap_days'], '{:.0f}d'):>9}"
                f"{_fmt(s['income']['cash_flow_buffer_months'], '{:.1f}m'):>8}"
            )
    return "\n".join(lines)


def _fmt(value: Any, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)
