"""A fact a text may cite: one of the user's figures, rounded and formatted once (the recommender builds
the table from the analysis; the grounding check accepts a number only when it matches one of them)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from spendsense_shared.messaging.contracts import CitableFact

Unit = Literal["usd", "percent", "days", "months", "count", "date", "mask", "text"]


@dataclass(frozen=True)
class Fact:
    key: str
    unit: Unit
    value: float | str  # rounded as displayed (numbers), ISO date, or the sanitized text
    display: str  # what a template shows the user
    raw: float | str | None = None  # the unrounded figure from the report
    untrusted: bool = False

    def prompt_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"key": self.key, "unit": self.unit, "value": self._prompt_value()}
        if self.untrusted:
            row["untrusted"] = True
        return row

    def _prompt_value(self) -> str:
        # Text goes to the model as the safe name (``guardrails.untrusted``): the same the template shows.
        return str(self.value) if self.unit == "text" else self.display


class FactTable(Mapping[str, Fact]):
    """An ordered, immutable set of facts keyed by name."""

    def __init__(self, facts: Iterable[Fact] = ()):
        self._facts: dict[str, Fact] = {f.key: f for f in facts}

    def __getitem__(self, key: str) -> Fact:
        return self._facts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._facts)

    def __len__(self) -> int:
        return len(self._facts)

    def subset(self, keys: Iterable[str]) -> FactTable:
        wanted = set(keys)
        return FactTable(f for k, f in self._facts.items() if k in wanted)

    def merged(self, other: Iterable[Fact]) -> FactTable:
        return FactTable([*self._facts.values(), *other])

    def values_for_trace(self) -> dict[str, Any]:
        return {k: f.raw if f.raw is not None else f.value for k, f in self._facts.items()}


def citable(facts: FactTable) -> list[CitableFact]:
    """The table as ``recommendations.generated`` carries it to the operator."""
    return [
        CitableFact(key=f.key, unit=f.unit, value=f.value, display=f.display, untrusted=f.untrusted)
        for f in facts.values()
    ]


def from_citable(facts: Iterable[CitableFact]) -> FactTable:
    """The table an operator's edited text is checked against."""
    return FactTable(
        Fact(key=f.key, unit=f.unit, value=f.value, display=f.display, untrusted=f.untrusted) for f in facts
    )
