"""The text-writer interface and the deterministic template writer (the default and the fallback).

A writer turns a ``WriteRequest`` (one selected item, its rationale template and the facts it may
cite) into a ``WrittenText`` that has passed every guardrail, plus what the trace needs to say how it
was made. The OpenAI-backed writer lives in ``spendsense_recommender.adapters.llm`` and falls back to
``template_text`` on any failure, so a writer never returns unchecked text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from spendsense_shared.guardrails.checks import check_text

from .facts import FactTable
from .vocabulary import DISCLOSURE

__all__ = ["TemplateWriter", "WriteRequest", "Writer", "WrittenText", "catalog_text", "template_text"]


def catalog_text(title: str, body: str, template: str) -> str:
    """The catalog item's own text: what a checked text may repeat of links, addresses, phone numbers
    and numbers in words (``check_text``'s ``catalog_text``)."""
    return f"{title}\n{body}\n{template}"


@dataclass(frozen=True)
class WriteRequest:
    item_id: str
    kind: str  # education | offer
    catalog_version: str
    title: str  # catalog title (trusted)
    body: str  # catalog content (trusted)
    persona: str
    template: str  # the rationale template, placeholders unrendered
    template_index: int
    facts: FactTable  # exactly the facts the template cites
    rendered: str  # the template rendered with the facts (guardrail-checked during selection)

    @property
    def catalog_text(self) -> str:
        return catalog_text(self.title, self.body, self.template)


@dataclass(frozen=True)
class WrittenText:
    title: str
    rationale: str
    disclosure: str
    guardrails: dict[str, Any]
    generator: dict[str, Any] = field(default_factory=dict)

    @property
    def used(self) -> str:
        return str(self.generator.get("used", "template"))


class Writer(Protocol):
    async def write(self, request: WriteRequest) -> WrittenText: ...


def template_text(
    request: WriteRequest, fallback: dict[str, Any] | None = None, started: float | None = None
) -> WrittenText:
    """The template's text, checked; ``fallback`` records why a model's text was not used."""
    began = time.perf_counter() if started is None else started
    report = check_text(
        request.title, request.rendered, DISCLOSURE, request.facts, (request.title,), request.catalog_text
    )
    generator: dict[str, Any] = {"used": "template", "template_index": request.template_index}
    if fallback is not None:
        generator["fallback"] = fallback
    generator["latency_ms"] = round((time.perf_counter() - began) * 1000, 3)
    return WrittenText(request.title, request.rendered, DISCLOSURE, report.to_dict(), generator)


class TemplateWriter:
    """Deterministic: the catalog's rationale template filled with the user's facts."""

    async def write(self, request: WriteRequest) -> WrittenText:
        return template_text(request)
