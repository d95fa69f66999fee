"""Persona rules as data (SPEC §5): a versioned YAML rule set, validated at load and evaluated safely
(no ``eval``: a fixed set of comparison operators over named signals) and vectorized — each criterion
is one boolean array over the whole signals DataFrame.

Format (see ``rules/personas-v1.yaml``)::

    version: personas-v1
    fallback: {id: general_wellness, name: General Wellness}
    personas:                       # priority order
      - id: high_utilization
        name: High Utilization
        when:                       # tree of all:/any: nodes; leaves are named criteria
          any:
            - {name: util_50, signal: credit.max_utilization, op: ">=", value: 0.5}
            - {name: spending_over_income, signal: cash_flow.spending, op: ">=",
               other: cash_flow.income, factor: 1.05}

Semantics: a null signal makes its criterion false (also for ``!=``); numeric comparisons allow a
relative tolerance of 1e-9 so that float noise cannot move a value across a boundary
(utilization 0.5 is ≥ 0.5; 0.4999 is not).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from .signals import SIGNAL_SCHEMA

__all__ = [
    "Criterion",
    "Group",
    "Persona",
    "RuleSet",
    "RuleSetError",
    "assign_personas",
    "evaluate",
    "evaluate_criterion",
    "load_rule_set",
    "packaged_source",
    "parse_rule_set",
    "rule_set_to_dict",
]

DEFAULT_RULE_FILE = "personas-v1.yaml"
TOLERANCE = 1e-9
_ORDER_OPS = frozenset({">=", ">", "<=", "<"})
_EQUALITY_OPS = frozenset({"==", "!="})
_MEMBERSHIP_OPS = frozenset({"in", "not_in"})
_OPS_BY_TYPE: dict[str, frozenset[str]] = {
    "number": _ORDER_OPS | _EQUALITY_OPS,
    "bool": _EQUALITY_OPS,
    "string": _EQUALITY_OPS | _MEMBERSHIP_OPS,
}
_LEAF_KEYS = frozenset({"name", "signal", "op", "value", "other", "factor", "description"})


class RuleSetError(ValueError):
    """A rule set that cannot be used; the message names the persona, criterion and key at fault."""


@dataclass(frozen=True)
class Criterion:
    """``signal <op> value`` or ``signal <op> factor x other``."""

    name: str
    signal: str
    op: str
    value: Any = None
    other: str | None = None
    factor: float = 1.0
    description: str | None = None


@dataclass(frozen=True)
class Group:
    mode: Literal["all", "any"]
    children: tuple[Condition, ...]


Condition = Group | Criterion


@dataclass(frozen=True)
class Persona:
    id: str
    name: str
    when: Condition
    focus: tuple[str, ...] = ()

    def criteria(self) -> list[Criterion]:
        """The leaves of ``when``, in file order."""
        out: list[Criterion] = []
        stack: list[Condition] = [self.when]
        while stack:
            node = stack.pop()
            if isinstance(node, Criterion):
                out.append(node)
            else:
                stack.extend(reversed(node.children))
        return out


@dataclass(frozen=True)
class RuleSet:
    version: str
    personas: tuple[Persona, ...]
    fallback_id: str = "general_wellness"
    fallback_name: str = "General Wellness"
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def persona(self, persona_id: str) -> Persona:
        for persona in self.personas:
            if persona.id == persona_id:
                return persona
        raise KeyError(persona_id)


# --------------------------------------------------------------------------------------------------
# Loading and validation


def packaged_source() -> str:
    """The text of the packaged rule-set file (``personas-v1.yaml``)."""
    return resources.files("spendsense_features.rules").joinpath(DEFAULT_RULE_FILE).read_text("utf-8")


def load_rule_set(path: str | Path | None = None) -> RuleSet:
    """Load and validate a rule set file; by default the packaged ``personas-v1.yaml``."""
    if path is None:
        text = packaged_source()
        where = DEFAULT_RULE_FILE
    else:
        text = Path(path).read_text("utf-8")
        where = str(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleSetError(f"{where}: not valid YAML: {exc}") from exc
    return parse_rule_set(document)


def parse_rule_set(document: Any, schema: Mapping[str, str] = SIGNAL_SCHEMA) -> RuleSet:
    """Validate a rule-set document (the parsed YAML) against the signal ``schema``."""
    if not isinstance(document, Mapping):
        raise RuleSetError("rule set: expected a mapping with 'version' and 'personas'")
    version = document.get("version")
    if not isinstance(version, str) or not version.strip():
        raise RuleSetError("rule set: missing 'version' (a non-empty string such as 'personas-v1')")
    fallback_id, fallback_name = _parse_fallback(document.get("fallback"))
    raw_personas = document.get("personas")
    if not isinstance(raw_personas, list) or not raw_personas:
        raise RuleSetError(f"rule set {version!r}: 'personas' must be a non-empty list")
    personas: list[Persona] = []
    seen: set[str] = {fallback_id}
    for index, raw in enumerate(raw_personas):
        persona = _parse_persona(raw, index, schema)
        if persona.id in seen:
            raise RuleSetError(f"rule set {version!r}: duplicate persona id {persona.id!r}")
        seen.add(persona.id)
        personas.append(persona)
    return RuleSet(version, tuple(personas), fallback_id, fallback_name, document)


def rule_set_to_dict(rule_set: RuleSet) -> dict[str, Any]:
    """The rule set as it is evaluated — defaults applied (fallback, names, ``factor``), values normalized —
    as JSON-ready data in the document's own shape, so two versions can be shown and compared."""
    return {
        "version": rule_set.version,
        "fallback": {"id": rule_set.fallback_id, "name": rule_set.fallback_name},
        "personas": [
            {"id": p.id, "name": p.name, "focus": list(p.focus), "when": _condition_to_dict(p.when)}
            for p in rule_set.personas
        ],
    }


def _condition_to_dict(condition: Condition) -> dict[str, Any]:
    if isinstance(condition, Group):
        return {condition.mode: [_condition_to_dict(c) for c in condition.children]}
    out: dict[str, Any] = {"name": condition.name, "signal": condition.signal, "op": condition.op}
    if condition.other is None:
        value = condition.value
        out["value"] = list(value) if isinstance(value, tuple) else value
    else:
        out["other"], out["factor"] = condition.other, condition.factor
    if condition.description is not None:
        out["description"] = condition.description
    return out


def _parse_fallback(raw: Any) -> tuple[str, str]:
    if raw is None:
        return "general_wellness", "General Wellness"
    if isinstance(raw, str):
        return raw, raw.replace("_", " ").title()
    if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
        return raw["id"], str(raw.get("name", raw["id"]))
    raise RuleSetError("rule set: 'fallback' must be a persona id or {id, name}")


def _parse_persona(raw: Any, index: int, schema: Mapping[str, str]) -> Persona:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise RuleSetError(f"personas[{index}]: expected a mapping with a string 'id'")
    pid = raw["id"]
    if "when" not in raw:
        raise RuleSetError(f"persona {pid!r}: missing 'when' (its criteria)")
    names: set[str] = set()
    when = _parse_node(raw["when"], pid, "when", schema, names)
    focus = raw.get("focus") or ()
    if not isinstance(focus, list | tuple) or not all(isinstance(f, str) for f in focus):
        raise RuleSetError(f"persona {pid!r}: 'focus' must be a list of strings")
    return Persona(pid, str(raw.get("name", pid)), when, tuple(focus))


def _parse_node(raw: Any, pid: str, path: str, schema: Mapping[str, str], names: set[str]) -> Condition:
    if isinstance(raw, Mapping) and set(raw) & {"all", "any"}:
        if len(raw) != 1:
            raise RuleSetError(f"persona {pid!r} at {path}: a group has exactly one key, 'all' or 'any'")
        mode: Literal["all", "any"] = "all" if "all" in raw else "any"
        children = raw[mode]
        if not isinstance(children, list) or not children:
            raise RuleSetError(f"persona {pid!r} at {path}.{mode}: expected a non-empty list")
        return Group(
            mode,
            tuple(_parse_node(c, pid, f"{path}.{mode}[{i}]", schema, names) for i, c in enumerate(children)),
        )
    if isinstance(raw, Mapping) and "signal" in raw:
        criterion = _parse_criterion(raw, pid, path, schema)
        if criterion.name in names:
            raise RuleSetError(f"persona {pid!r}: duplicate criterion name {criterion.name!r}")
        names.add(criterion.name)
        return criterion
    raise RuleSetError(f"persona {pid!r} at {path}: expected {{all: [...]}}, {{any: [...]}} or a criterion")


def _parse_criterion(raw: Mapping[str, Any], pid: str, path: str, schema: Mapping[str, str]) -> Criterion:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise RuleSetError(f"persona {pid!r} at {path}: criterion needs a 'name'")
    where = f"persona {pid!r}, criterion {name!r}"
    unknown = set(raw) - _LEAF_KEYS
    if unknown:
        raise RuleSetError(f"{where}: unknown key(s) {sorted(unknown)}")
    signal, op = raw.get("signal"), raw.get("op")
    kind = _signal_type(signal, schema, where)
    if op not in _OPS_BY_TYPE[kind]:
        allowed = ", ".join(sorted(_OPS_BY_TYPE[kind]))
        raise RuleSetError(f"{where}: operator {op!r} is not valid for {kind} signal {signal!r} ({allowed})")
    has_value, has_other = "value" in raw, "other" in raw
    if has_value == has_other:
        raise RuleSetError(f"{where}: give exactly one of 'value' or 'other'")
    if has_other:
        return _parse_comparison(raw, name, str(signal), str(op), kind, schema, where)
    if "factor" in raw:
        raise RuleSetError(f"{where}: 'factor' only applies with 'other'")
    value = _check_value(raw["value"], kind, str(op), where)
    return Criterion(name, str(signal), str(op), value=value, description=raw.get("description"))


def _parse_comparison(
    raw: Mapping[str, Any], name: str, signal: str, op: str, kind: str, schema: Mapping[str, str], where: str
) -> Criterion:
    other = raw["other"]
    other_kind = _signal_type(other, schema, where)
    if other_kind != kind or op in _MEMBERSHIP_OPS:
        raise RuleSetError(f"{where}: cannot compare {kind} signal {signal!r} with {other_kind} {other!r}")
    factor = raw.get("factor", 1.0)
    if kind != "number" and "factor" in raw:
        raise RuleSetError(f"{where}: 'factor' needs number signals")
    if not _is_number(factor):
        raise RuleSetError(f"{where}: 'factor' must be a number, got {factor!r}")
    return Criterion(
        name, signal, op, other=str(other), factor=float(factor), description=raw.get("description")
    )


def _signal_type(signal: Any, schema: Mapping[str, str], where: str) -> str:
    if not isinstance(signal, str) or signal not in schema:
        raise RuleSetError(f"{where}: unknown signal {signal!r} (not in the signal schema)")
    return schema[signal]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_value(value: Any, kind: str, op: str, where: str) -> Any:
    if op in _MEMBERSHIP_OPS:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise RuleSetError(f"{where}: {op!r} needs a non-empty list of strings, got {value!r}")
        return tuple(value)
    ok = {
        "number": _is_number(value),
        "bool": isinstance(value, bool),
        "string": isinstance(value, str),
    }[kind]
    if not ok:
        raise RuleSetError(f"{where}: value {value!r} does not match the signal type {kind!r}")
    return float(value) if kind == "number" else value


# --------------------------------------------------------------------------------------------------
# Evaluation (vectorized)


def _numbers(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _compare_numbers(lhs: np.ndarray, op: str, rhs: np.ndarray) -> np.ndarray:
    tol = TOLERANCE * np.maximum(1.0, np.abs(np.nan_to_num(rhs)))
    with np.errstate(invalid="ignore"):
        result = {
            ">=": lhs >= rhs - tol,
            ">": lhs > rhs + tol,
            "<=": lhs <= rhs + tol,
            "<": lhs < rhs - tol,
            "==": np.abs(lhs - rhs) <= tol,
            "!=": np.abs(lhs - rhs) > tol,
        }[op]
    return result & ~np.isnan(lhs) & ~np.isnan(rhs)


def _objects(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    valid = values.notna().to_numpy(bool)
    return values.astype(object).to_numpy(), valid


def evaluate_criterion(criterion: Criterion, signals: pd.DataFrame) -> np.ndarray:
    """One boolean per row of ``signals``; null operands give False."""
    kind = SIGNAL_SCHEMA.get(criterion.signal, "number")
    column = signals[criterion.signal]
    if kind == "number":
        lhs = _numbers(column)
        if criterion.other is not None:
            rhs = criterion.factor * _numbers(signals[criterion.other])
        else:
            rhs = np.full(len(lhs), float(criterion.value))
        return _compare_numbers(lhs, criterion.op, rhs)
    values, valid = _objects(column)
    if criterion.op in _MEMBERSHIP_OPS:
        hit = pd.Series(values).isin(list(criterion.value)).to_numpy(bool)
        return valid & (hit if criterion.op == "in" else ~hit)
    if criterion.other is not None:
        other, other_valid = _objects(signals[criterion.other])
        valid &= other_valid
    else:
        other = np.full(len(values), criterion.value, dtype=object)
    if kind == "bool":
        values = np.where(valid, values, False).astype(bool)
        other = np.where(valid, other, False).astype(bool)
    equal = values == other
    return valid & (equal if criterion.op == "==" else ~equal)


def evaluate(condition: Condition, signals: pd.DataFrame) -> np.ndarray:
    """A condition tree over every row of ``signals``."""
    return _node_values(condition, signals, {})


def _fired(
    condition: Condition, active: np.ndarray, values: dict[int, np.ndarray], out: dict[str, np.ndarray]
) -> None:
    """Mark the criteria that made a matched persona match: the true leaves on a satisfied path (a
    true leaf in an ``all`` group that failed did not fire)."""
    if isinstance(condition, Criterion):
        out[condition.name] = active & values[id(condition)]
        return
    for child in condition.children:
        child_active = active & values[id(child)] if condition.mode == "any" else active
        _fired(child, child_active, values, out)


def _node_values(condition: Condition, signals: pd.DataFrame, values: dict[int, np.ndarray]) -> np.ndarray:
    if isinstance(condition, Criterion):
        result = evaluate_criterion(condition, signals)
    else:
        parts = [_node_values(child, signals, values) for child in condition.children]
        reduce = np.logical_and if condition.mode == "all" else np.logical_or
        result = reduce.reduce(parts, axis=0)
    values[id(condition)] = result
    return result


def _persona_matches(persona: Persona, signals: pd.DataFrame) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(matched per row, criterion names, fired matrix rows x criteria)."""
    values: dict[int, np.ndarray] = {}
    matched = _node_values(persona.when, signals, values)
    fired: dict[str, np.ndarray] = {}
    _fired(persona.when, matched, values, fired)
    names = [c.name for c in persona.criteria()]
    matrix = np.column_stack([fired[n] for n in names]) if names else np.zeros((len(signals), 0), bool)
    return matched, names, matrix


def _fired_lists(names: Sequence[str], matrix: np.ndarray, rows: np.ndarray) -> list[list[str]]:
    """Names of the fired criteria for each row, via one bitmask per row (few distinct patterns)."""
    masks = matrix[rows].astype(np.int64) @ (np.int64(1) << np.arange(len(names), dtype=np.int64))
    cache: dict[int, tuple[str, ...]] = {}
    out = []
    for mask in masks.tolist():
        if mask not in cache:
            cache[mask] = tuple(n for i, n in enumerate(names) if mask >> i & 1)
        out.append(list(cache[mask]))
    return out


def assign_personas(signals: pd.DataFrame, rule_set: RuleSet) -> pd.DataFrame:
    """Personas per (user_id, window): ``primary`` (first match in priority order, else the fallback),
    ``matched`` (every matching persona with the criteria that fired) and ``rule_set_version``."""
    n = len(signals)
    primary = np.full(n, rule_set.fallback_id, dtype=object)
    assigned = np.zeros(n, dtype=bool)
    matched: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for persona in rule_set.personas:
        hit, names, matrix = _persona_matches(persona, signals)
        primary[hit & ~assigned] = persona.id
        assigned |= hit
        rows = np.flatnonzero(hit)
        for row, criteria in zip(rows.tolist(), _fired_lists(names, matrix, rows), strict=True):
            matched[row].append({"id": persona.id, "criteria": criteria})
    return pd.DataFrame(
        {
            "user_id": signals["user_id"].to_numpy(),
            "window": signals["window"].to_numpy(),
            "primary": primary,
            "matched": matched,
            "rule_set_version": rule_set.version,
        }
    )
