"""The evaluation's report.html in headless Chromium (Debian's, as every browser test here): opened from
disk with every network request refused (it must be self-contained), every chart drawn (each ``svg
[data-chart]`` has visible marks), and every figure shown equal to metrics.json (``data-metric`` names
its path; the text shown is that value formatted). Needs no stack: the evaluation runs offline."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from spendsense_cli.evaluation.metrics import DISTRIBUTION_SIGNALS
from spendsense_cli.evaluation.report import ms, pct
from spendsense_cli.evaluation.runner import evaluate_offline
from spendsense_cli.synthetic import generate

CHARTS = (
    "persona-distribution",
    "confusion-matrix",
    "latency-histogram",
    "generation-histogram",
    "fairness-age_band",
    "fairness-region",
    "fairness-income_band",
    *(f"signal-{name}" for name in DISTRIBUTION_SIGNALS),
)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("report")
    summary = generate(users=36, seed=31, out=folder / "users.jsonl")
    result = evaluate_offline(
        summary.path, folder / "out", labels=summary.labels_path, processes=2, say=print
    )
    return result.files["html"], result.metrics


def value_at(metrics: dict[str, Any], path: str) -> Any:
    node: Any = metrics
    for part in path.split("."):
        node = node[part]
    return len(node) if isinstance(node, list) else node


def test_every_chart_is_drawn_and_every_figure_matches_metrics_json(
    browser: Any, evaluated: tuple[Path, dict[str, Any]]
) -> None:
    page_file, metrics = evaluated
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requested: list[str] = []

    def refuse(route: Any) -> None:
        if not route.request.url.startswith("file://"):
            requested.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", refuse)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(page_file.as_uri())
        assert page.title() == "SpendSense evaluation"
        drawn = page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('svg[data-chart]')].map(svg => {
                const marks = [...svg.querySelectorAll('.bar, .cell')];
                const visible = marks.filter(m => { const b = m.getBoundingClientRect(); return b.width > 0 && b.height > 0; });
                const box = svg.getBoundingClientRect();
                return [svg.dataset.chart, {marks: marks.length, visible: visible.length, width: box.width, height: box.height,
                        values: marks.map(m => Number(m.dataset.value))}];
            }))"""
        )
        for chart in CHARTS:
            assert chart in drawn, f"{chart} is not on the page"
            assert drawn[chart]["width"] > 100
            assert drawn[chart]["height"] > 100
            assert drawn[chart]["visible"] == drawn[chart]["marks"] > 0, chart
        # The charts' marks are metrics.json's numbers.
        assert sum(drawn["confusion-matrix"]["values"]) == metrics["accuracy"]["labelled"]
        persona_bars = drawn["persona-distribution"]["values"]
        assert sum(persona_bars) == 2 * metrics["users"]  # assigned and generator's, every user once each
        assert sum(drawn["latency-histogram"]["values"]) == metrics["latency"]["end_to_end"]["count"]
        signal = "credit.max_utilization"
        assert drawn[f"signal-{signal}"]["values"] == metrics["signals"][signal]["counts"]

        figures = page.evaluate(
            """() => [...document.querySelectorAll('[data-metric]')].map(e =>
                ({path: e.dataset.metric, value: JSON.parse(e.dataset.value), text: e.textContent.trim()}))"""
        )
        paths = {f["path"] for f in figures}
        for needed in ("coverage.rate", "explainability.rate", "relevance.rate", "auditability.rate"):
            assert needed in paths
        assert "accuracy.180d.rate" in paths
        for figure in figures:
            expected = value_at(metrics, figure["path"])
            if isinstance(expected, float):
                assert math.isclose(figure["value"], expected), figure
            else:
                assert figure["value"] == expected, figure
            if figure["path"].endswith(".rate"):
                assert figure["text"] == pct(expected), figure
            elif figure["path"].endswith("p95_ms"):
                assert ms(expected) in figure["text"], figure
            elif figure["path"].endswith(".ratio"):
                assert figure["text"].startswith("n/a" if expected is None else f"{expected:.2f}"), figure
            else:
                assert str(expected) in figure["text"].replace(",", "").replace("Flags: ", ""), figure
        assert requested == [], f"the report fetched {requested}"
        assert errors == []
        page.screenshot(path=str(page_file.with_suffix(".png")), full_page=True)
    finally:
        context.close()


def test_the_markdown_summary_shows_the_same_headline(evaluated: tuple[Path, dict[str, Any]]) -> None:
    page_file, metrics = evaluated
    markdown = (page_file.parent / "report.md").read_text()
    assert f"| Coverage | {pct(metrics['coverage']['rate'])} |" in markdown
    assert f"| Auditability | {pct(metrics['auditability']['rate'])} |" in markdown
    assert json.loads((page_file.parent / "metrics.json").read_text()) == metrics
