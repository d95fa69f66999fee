"""The evaluation's files: ``metrics.json`` (``docs/metrics.schema.json``), ``metrics.csv`` (one row per
figure), ``report.md`` (the one-page summary) and ``report.html`` (the same summary with charts, inline
SVG and CSS: one file that opens offline, nothing fetched). ``traces/`` is written as users are
evaluated (``TraceWriter``), one JSON file per user.

Every figure the HTML shows carries ``data-metric`` (its path in ``metrics.json``) and ``data-value``, and
every chart is an ``<svg data-chart=…>`` whose marks are ``.bar`` / ``.cell`` elements with ``data-value``:
the browser test checks the page against ``metrics.json`` through them.
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from spendsense_cli.evaluation.metrics import DISTRIBUTION_SIGNALS, FOUR_FIFTHS, PERSONAS

Json = dict[str, Any]
SCHEMA_ID = "https://spendsense.example/schemas/evaluation-metrics-v1.json"
PERSONA_NAMES = {
    "high_utilization": "High Utilization",
    "variable_income_budgeter": "Variable Income Budgeter",
    "cash_flow_balancer": "Cash-Flow Balancer",
    "subscription_heavy": "Subscription-Heavy",
    "savings_builder": "Savings Builder",
    "general_wellness": "General Wellness",
}
ATTRIBUTE_NAMES = {"age_band": "Age band", "region": "Region", "income_band": "Income band"}
SAFE_FILE = re.compile(r"[^A-Za-z0-9_.@-]+")


class TraceWriter:
    """``traces/<user_id>.json``: the user's decision traces, written as soon as they exist."""

    def __init__(self, out: Path) -> None:
        self.folder = out / "traces"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.written = 0

    def write(self, user_id: str, traces: bytes) -> None:
        name = SAFE_FILE.sub("_", user_id)[:120] or "user"
        (self.folder / f"{name}.json").write_bytes(traces)
        self.written += 1


def write_all(out: Path, metrics: Json) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "metrics.json",
        "csv": out / "metrics.csv",
        "markdown": out / "report.md",
        "html": out / "report.html",
    }
    paths["json"].write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    write_csv(paths["csv"], metrics)
    paths["markdown"].write_text(render_markdown(metrics))
    paths["html"].write_text(render_html(metrics))
    return paths


# -- CSV ---------------------------------------------------------------------------------------------


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every scalar leaf of ``value`` as (dotted path, value); lists (histograms) are left out."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from flatten(child, f"{prefix}.{key}" if prefix else str(key))
    elif not isinstance(value, list):
        yield prefix, value


def write_csv(path: Path, metrics: Json) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["metric", "value"])
        for name, value in flatten(metrics):
            writer.writerow([name, "" if value is None else value])


# -- shared formatting -------------------------------------------------------------------------------


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def headline(metrics: Json) -> list[tuple[str, str, str, str]]:
    """(label, metrics.json path, value as shown, note) for the summary table."""
    m = metrics
    accuracy = m.get("accuracy")
    rows = [
        ("Users evaluated", "users", f"{m['users']:,}", f"{m['recommendations']['total']:,} recommendations"),
        (
            "Coverage",
            "coverage.rate",
            pct(m["coverage"]["rate"]),
            "one of the five personas and ≥ 3 behaviours",
        ),
        (
            "Explainability",
            "explainability.rate",
            pct(m["explainability"]["rate"]),
            "rationale cites the user's own figures",
        ),
        (
            "Relevance",
            "relevance.rate",
            pct(m["relevance"]["rate"]),
            "education items tagged with the user's persona",
        ),
        (
            "Auditability",
            "auditability.rate",
            pct(m["auditability"]["rate"]),
            "complete trace, chain verified, decision replayed",
        ),
    ]
    if accuracy:
        rows.append(
            (
                "Persona accuracy (180 d)",
                "accuracy.180d.rate",
                pct(accuracy["180d"]["rate"]),
                f"{accuracy['labelled']:,} labelled users",
            )
        )
        rows.append(
            (
                "Persona accuracy (30 d)",
                "accuracy.30d.rate",
                pct(accuracy["30d"]["rate"]),
                "labels describe the 180-day window",
            )
        )
    latency = m["latency"]
    rows += [
        (
            "Generation p50 / p95",
            "latency.generation.p95_ms",
            f"{ms(latency['generation']['p50_ms'])} / {ms(latency['generation']['p95_ms'])}",
            "per user",
        ),
        (
            "Upload → recommendations p50 / p95",
            "latency.end_to_end.p95_ms",
            f"{ms(latency['end_to_end']['p50_ms'])} / {ms(latency['end_to_end']['p95_ms'])}",
            "per user",
        ),
        (
            "Fairness flags (significant)",
            "fairness.significant_flags",
            str(m["fairness"]["significant_flags"]),
            f"four-fifths rule ({FOUR_FIFTHS:g}) and a z-test at 5 %; "
            f"{len(m['fairness']['flags'])} below 0.8 in all",
        ),
    ]
    return rows


def _value_at(metrics: Json, path: str) -> Any:
    node: Any = metrics
    for part in path.split("."):
        node = node[part]
    return len(node) if isinstance(node, list) else node


def _flag_text(flag: Json) -> str:
    significance = "significant" if flag["significant"] else "not significant (small groups)"
    return (
        f"{ATTRIBUTE_NAMES.get(flag['attribute'], flag['attribute'])}: {flag['outcome']} "
        f"ratio {flag['ratio']:.2f} "
        f"({flag['lowest']} vs {flag['highest']}; p = {flag['p_value']}, {significance})"
    )


# -- Markdown ----------------------------------------------------------------------------------------


def render_markdown(metrics: Json) -> str:
    meta = metrics.get("run", {})
    lines = [
        "# SpendSense evaluation",
        "",
        f"Source: **{metrics['source']}** · {metrics['users']:,} users · "
        f"generated {meta.get('generated_at', '')}"
        f" in {meta.get('seconds', '?')} s",
        "",
        "| Metric | Value | What it means |",
        "|---|---:|---|",
    ]
    lines += [f"| {label} | {value} | {note} |" for label, _, value, note in headline(metrics)]
    g = metrics["guardrails"]
    lines += [
        "",
        "## Guardrails and review",
        "",
        f"- tone failures: {g['tone_failures']}, grounding failures: {g['grounding_failures']}, "
        f"fallbacks to the template: {g['fallbacks']}; texts by generator: {g['generators']}",
        f"- eligibility refusals: {g['eligibility_refusals']} offers ({g['refusals_by_rule'] or 'none'})",
        f"- review: {g['review']}; operator rejections: {g['operator_rejections']}, "
        f"overrides: {g['operator_overrides']}",
        "",
        "## Fairness (four-fifths rule)",
        "",
    ]
    attributes = metrics["fairness"]["attributes"]
    if not attributes:
        lines.append("No demographic groups known (pass `--labels` with age_band, region, income_band).")
    for attribute, body in attributes.items():
        largest = body["largest_disparity"]
        lines.append(
            f"- {ATTRIBUTE_NAMES.get(attribute, attribute)}: offer rate ratio {_ratio(body['offer_rate'])}, "
            f"approval rate ratio {_ratio(body['approval_rate'])}; largest disparity: "
            + (f"{largest['outcome']} {largest['ratio']:.2f}" if largest else "n/a")
        )
    flags = metrics["fairness"]["flags"]
    lines += ["", f"Flags: {len(flags)}" + ("" if flags else " (none)")]
    lines += [f"- {_flag_text(f)}" for f in flags]
    lines += [
        "",
        "Personas (180 d): "
        + ", ".join(f"{PERSONA_NAMES[p]} {n}" for p, n in metrics["personas"]["180d"].items()),
    ]
    lines += ["", "Files: metrics.json, metrics.csv, report.html, traces/ (one JSON file per user).", ""]
    return "\n".join(lines)


def _ratio(d: Json) -> str:
    return "n/a" if d["ratio"] is None else f"{d['ratio']:.2f}" + (" (flagged)" if d["flagged"] else "")


# -- SVG charts --------------------------------------------------------------------------------------

COLORS = ("#2f6db5", "#e08a2c", "#3f9b5a", "#b5412f", "#7a5cb5", "#6b7280")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def bar_chart(
    name: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    fmt: str = "count",
    line: float | None = None,
    max_value: float | None = None,
) -> str:
    """Grouped vertical bars: one group per category, one bar per series."""
    width, height, left, bottom, top = 640, 260, 48, 70, 28
    plot_w, plot_h = width - left - 12, height - bottom - top
    peak = max_value or max([v for _, values in series for v in values] + [line or 0, 1e-9])
    group_w = plot_w / max(1, len(categories))
    bar_w = max(2.0, (group_w - 10) / max(1, len(series)))
    parts = [
        f'<svg data-chart="{_e(name)}" role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 12}" y2="{top + plot_h}" class="axis"/>',
    ]
    for tick in (0.0, 0.5, 1.0):
        y = top + plot_h - tick * plot_h
        label = _fmt(tick * peak, fmt)
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_e(label)}</text>'
        )
    for ci, category in enumerate(categories):
        x0 = left + ci * group_w + 5
        for si, (series_name, values) in enumerate(series):
            value = values[ci]
            h = 0.0 if peak <= 0 else value / peak * plot_h
            x, y = x0 + si * bar_w, top + plot_h - h
            parts.append(
                f'<rect class="bar" data-series="{_e(series_name)}" data-category="{_e(category)}" '
                f'data-value="{value}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{bar_w - 1:.1f}" height="{max(h, 0.5):.1f}" '
                f'fill="{COLORS[si % len(COLORS)]}"><title>{_e(category)} · {_e(series_name)}: '
                f"{_e(_fmt(value, fmt))}</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + group_w / 2 - 5:.1f}" y="{top + plot_h + 14}" class="label" text-anchor="end" '
            f'transform="rotate(-25 {x0 + group_w / 2 - 5:.1f} {top + plot_h + 14})">{_e(category)}</text>'
        )
    if line is not None and peak > 0:
        y = top + plot_h - line / peak * plot_h
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 12}" y2="{y:.1f}" class="threshold"/>')
    for si, (series_name, _) in enumerate(series):
        parts.append(
            f'<rect x="{left + si * 170}" y="6" width="10" height="10" fill="{COLORS[si % len(COLORS)]}"/>'
            f'<text x="{left + si * 170 + 14}" y="15" class="tick">{_e(series_name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _fmt(value: float, fmt: str) -> str:
    if fmt == "percent":
        return f"{value * 100:.0f} %"
    if fmt == "ms":
        return ms(value)
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.2f}"


def histogram_chart(name: str, title: str, hist: Json, unit: str) -> str:
    edges, counts = hist.get("edges", []), hist.get("counts", [])
    if not counts:
        return f'<p class="empty" data-chart-empty="{_e(name)}">{_e(title)}: no values.</p>'
    labels = [f"{_unit(edges[i], unit)}-{_unit(edges[i + 1], unit)}" for i in range(len(counts))]
    return bar_chart(name, title, labels, [("users", [float(c) for c in counts])])


def _unit(value: float, unit: str) -> str:
    if unit == "percent":
        return f"{value * 100:.0f}%"
    if unit == "usd":
        return f"${value:,.0f}"
    if unit == "ms":
        return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"
    return f"{value:,.1f}"


def confusion_chart(accuracy: Json, window: str = "180d") -> str:
    matrix = accuracy[window]["confusion"]
    cell, left, top = 64, 170, 120
    size = left + cell * len(PERSONAS) + 10
    peak = max(max(row.values()) for row in matrix.values()) or 1
    parts = [
        f'<svg data-chart="confusion-matrix" role="img" aria-label="Confusion matrix ({window})" '
        f'viewBox="0 0 {size} {top + cell * len(PERSONAS) + 10}" width="100%" xmlns="http://www.w3.org/2000/svg">'
        f"<title>Confusion matrix, {window}: rows are the generator's persona, "
        "columns the assigned one</title>"
    ]
    for j, guess in enumerate(PERSONAS):
        x = left + j * cell + cell / 2
        parts.append(
            f'<text x="{x:.1f}" y="{top - 8}" class="label" transform="rotate(-35 {x:.1f} {top - 8})">'
            f"{_e(PERSONA_NAMES[guess])}</text>"
        )
    for i, truth in enumerate(PERSONAS):
        y = top + i * cell
        parts.append(
            f'<text x="{left - 6}" y="{y + cell / 2 + 4:.1f}" class="label" text-anchor="end">'
            f"{_e(PERSONA_NAMES[truth])}</text>"
        )
        for j, guess in enumerate(PERSONAS):
            n = matrix[truth][guess]
            shade = 0.08 + 0.92 * n / peak
            color = "47,109,181" if truth == guess else "181,65,47"
            parts.append(
                f'<rect class="cell" data-truth="{truth}" data-guess="{guess}" data-value="{n}" '
                f'x="{left + j * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="rgba({color},{shade:.2f})"><title>{_e(PERSONA_NAMES[truth])} → '
                f"{_e(PERSONA_NAMES[guess])}: {n}</title></rect>"
                f'<text x="{left + j * cell + cell / 2 - 1}" y="{y + cell / 2 + 4}" text-anchor="middle" '
                f'class="count">{n}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def fairness_chart(attribute: str, body: Json) -> str:
    groups = list(body["users"])
    offers = [body["offer_rate"]["groups"][g]["rate"] or 0.0 for g in groups]
    approvals = [(body["approval_rate"]["groups"].get(g) or {}).get("rate") or 0.0 for g in groups]
    largest = body["largest_disparity"]
    series: list[tuple[str, Sequence[float]]] = [("offer rate", offers), ("approval rate", approvals)]
    if largest and largest["outcome"].startswith("persona:"):
        persona = largest["outcome"].split(":", 1)[1]
        rates = body["persona_rates"][persona]["groups"]
        series.append((f"{PERSONA_NAMES[persona]} rate", [rates[g]["rate"] or 0.0 for g in groups]))
    return bar_chart(
        f"fairness-{attribute}",
        f"{ATTRIBUTE_NAMES.get(attribute, attribute)}: rates by group",
        groups,
        series,
        fmt="percent",
        max_value=1.0,
    )


# -- HTML --------------------------------------------------------------------------------------------

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2933;
background:#f6f7f9}
main{max-width:1060px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 10px}
.meta{color:#52606d;margin:0 0 18px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:12px}
.card{background:#fff;border:1px solid #d9dee4;border-radius:8px;padding:12px 14px}
.card .label{font-size:13px;color:#52606d}.card .value{font-size:24px;font-weight:650;margin:2px 0}
.card .note{font-size:12px;color:#616e7c}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}
figure{background:#fff;border:1px solid #d9dee4;border-radius:8px;margin:0;padding:10px}
figcaption{font-weight:600;margin-bottom:6px}
svg .axis{stroke:#9aa5b1}svg .threshold{stroke:#b5412f;stroke-dasharray:5 4}
svg text{fill:#323f4b;font-size:11px}svg .count{font-size:13px;font-weight:600}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border:1px solid #d9dee4;padding:6px 8px;text-align:left}
td.num{text-align:right}.flag{color:#9b2c1f;font-weight:600}.watch{color:#52606d}
"""


def _card(label: str, path: str, shown: str, note: str, metrics: Json) -> str:
    value = _value_at(metrics, path)
    return (
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value" data-metric="{_e(path)}" data-value="{_e(json.dumps(value))}">{_e(shown)}</div>'
        f'<div class="note">{_e(note)}</div></div>'
    )


def render_html(metrics: Json) -> str:
    meta = metrics.get("run", {})
    body = [
        f'<h1>SpendSense evaluation</h1><p class="meta">Source: <strong>{_e(metrics["source"])}</strong> · '
        f"{metrics['users']:,} users · generated {_e(meta.get('generated_at', ''))} "
        f"in {_e(meta.get('seconds', '?'))} s"
        f"{' · ' + _e(meta['input']) if meta.get('input') else ''}</p>",
        '<section aria-label="Summary"><div class="cards">',
        *(_card(label, path, shown, note, metrics) for label, path, shown, note in headline(metrics)),
        "</div></section>",
        '<h2>Personas and accuracy</h2><div class="grid">',
        _figure("Persona distribution (180-day window)", _persona_chart(metrics)),
    ]
    if metrics.get("accuracy"):
        body.append(
            _figure(
                "Confusion matrix (180 d): generator's persona (rows) vs assigned (columns)",
                confusion_chart(metrics["accuracy"]),
            )
        )
    else:
        body.append('<p class="empty">No labels given: persona accuracy is not computed.</p>')
    body.append('</div><h2>Latency</h2><div class="grid">')
    latency = metrics["latency"]
    body.append(
        _figure(
            "Upload → recommendations, per user (ms)",
            histogram_chart(
                "latency-histogram", "Upload to recommendations (ms)", latency["end_to_end_histogram"], "ms"
            ),
        )
    )
    body.append(
        _figure(
            "Generation, per user (ms)",
            histogram_chart("generation-histogram", "Generation (ms)", latency["generation_histogram"], "ms"),
        )
    )
    body.append("</div>")
    body.append(_fairness_section(metrics))
    body.append(_guardrail_section(metrics))
    body.append('<h2>Signal distributions (180-day window)</h2><div class="grid">')
    for name, unit in DISTRIBUTION_SIGNALS.items():
        body.append(_figure(name, histogram_chart(f"signal-{name}", name, metrics["signals"][name], unit)))
    body.append("</div>")
    body.append(
        '<p class="meta">Definitions: docs/evaluation.md. Files beside this one: metrics.json (schema '
        "docs/metrics.schema.json), metrics.csv, report.md, traces/ (one decision-trace JSON per user).</p>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>SpendSense evaluation</title>"
        f"<style>{CSS}</style></head><body><main>{''.join(body)}</main></body></html>\n"
    )


def _figure(caption: str, chart: str) -> str:
    return f"<figure><figcaption>{_e(caption)}</figcaption>{chart}</figure>"


def _persona_chart(metrics: Json) -> str:
    assigned = [float(metrics["personas"]["180d"][p]) for p in PERSONAS]
    series: list[tuple[str, Sequence[float]]] = [("assigned", assigned)]
    if metrics.get("accuracy"):
        series.append(("generator's persona", [float(metrics["accuracy"]["truth"][p]) for p in PERSONAS]))
    return bar_chart(
        "persona-distribution", "Users per persona", [PERSONA_NAMES[p] for p in PERSONAS], series
    )


def _fairness_section(metrics: Json) -> str:
    fairness = metrics["fairness"]
    parts = [
        "<h2>Fairness</h2>",
        f"<p>Rates by group; the four-fifths rule flags a lowest-to-highest ratio below {FOUR_FIFTHS:g} "
        f"(groups of at least {fairness['min_group_users']} users; significance: a two-proportion "
        "z-test of the "
        "lowest and highest group at 5 %). Bars are rates from 0 to 100 %.</p>",
    ]
    if not fairness["attributes"]:
        return (
            parts[0]
            + "<p>No demographic groups known (pass --labels with age_band, region, income_band).</p>"
        )
    parts.append('<div class="grid">')
    for attribute, body in fairness["attributes"].items():
        parts.append(_figure(f"{ATTRIBUTE_NAMES.get(attribute, attribute)}", fairness_chart(attribute, body)))
    parts.append("</div>")
    parts.append(
        "<table><thead><tr><th>Attribute</th><th>Offer-rate ratio</th><th>Approval-rate ratio</th>"
        "<th>Largest disparity</th></tr></thead><tbody>"
    )
    for attribute, body in fairness["attributes"].items():
        largest = body["largest_disparity"]
        parts.append(
            f"<tr><td>{_e(ATTRIBUTE_NAMES.get(attribute, attribute))}</td>"
            + _ratio_cell(attribute, "offer_rate", body)
            + _ratio_cell(attribute, "approval_rate", body)
            + f"<td>{_e(largest['outcome'] + ' ' + format(largest['ratio'], '.2f') if largest else 'n/a')}"
            + "</td></tr>"
        )
    parts.append("</tbody></table>")
    flags = fairness["flags"]
    parts.append(f'<p data-metric="fairness.flags" data-value="{len(flags)}">Flags: {len(flags)}</p>')
    if flags:
        parts.append(
            "<ul>"
            + "".join(
                f'<li class="{"flag" if f["significant"] else "watch"}" '
                f'data-flag="{_e(f["attribute"])}:{_e(f["outcome"])}">{_e(_flag_text(f))}</li>'
                for f in flags
            )
            + "</ul>"
        )
    return "".join(parts)


def _ratio_cell(attribute: str, outcome: str, body: Json) -> str:
    ratio = body[outcome]["ratio"]
    return (
        f'<td class="num" data-metric="fairness.attributes.{attribute}.{outcome}.ratio" '
        f'data-value="{_e(json.dumps(ratio))}">{_e(_ratio(body[outcome]))}</td>'
    )


def _guardrail_section(metrics: Json) -> str:
    g = metrics["guardrails"]
    rows = [
        ("Tone failures", "guardrails.tone_failures"),
        ("Grounding failures", "guardrails.grounding_failures"),
        ("Fallbacks to the template", "guardrails.fallbacks"),
        ("Eligibility refusals (offers)", "guardrails.eligibility_refusals"),
        ("Operator rejections", "guardrails.operator_rejections"),
        ("Operator overrides", "guardrails.operator_overrides"),
    ]
    cells = "".join(
        f'<tr><td>{_e(label)}</td><td class="num" data-metric="{path}" '
        f'data-value="{_value_at(metrics, path)}">'
        f"{_value_at(metrics, path):,}</td></tr>"
        for label, path in rows
    )
    return (
        "<h2>Guardrails and review</h2><table><tbody>"
        + cells
        + f"<tr><td>Refusals by rule</td><td>{_e(g['refusals_by_rule'] or 'none')}</td></tr>"
        + f"<tr><td>Review states</td><td>{_e(g['review'])}</td></tr></tbody></table>"
    )
