"""``canonical_json`` encodes a value as JSONB gives it back, with or without walking it first.

A value whose plain encoding reads neither "-0.0" nor "e+" is encoded as it is; any other takes the
walk (``_as_jsonb_returns``). Both are compared here with the implementation they replaced, kept below
as ``_reference_...``, over generated JSON-like values (negative zero, floats from 1e16 up, strings
that read "-0.0" or "e+", tuples, mappings json does not know, values it refuses).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from spendsense_recommender.domain.trace import _as_jsonb_returns, canonical_json, content_hash


def _reference_as_jsonb_returns(value: Any) -> Any:
    if isinstance(value, float):
        if value == 0.0:
            return 0.0  # -0.0 too
        if abs(value) >= 1e16:
            return int(Decimal(repr(value)))
        return value
    if isinstance(value, Mapping):
        return {key: _reference_as_jsonb_returns(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_reference_as_jsonb_returns(item) for item in value]
    return value


def _reference_canonical_json(value: Any) -> bytes:
    return json.dumps(
        _reference_as_jsonb_returns(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode()


def _outcome(encode: Any, value: Any) -> Any:
    try:
        return encode(value)
    except Exception as error:  # compared, not handled
        return type(error)


floats = st.one_of(
    st.floats(),  # nan and the infinities too: refused (or not), as before
    st.sampled_from([0.0, -0.0, 1e16, -1e16, 5.2e16, 9999999999999998.0, 1.5e300, 1e-7, -0.01, 0.1]),
)
strings = st.one_of(st.text(max_size=12), st.sampled_from(["-0.0", "e+", "1e+16", "x-0.01", "Disney+"]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), floats, strings)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(strings, children, max_size=4),
        st.dictionaries(strings, children, max_size=3).map(MappingProxyType),
    ),
    max_leaves=24,
)


@settings(max_examples=500, deadline=None)
@given(value=values)
def test_canonical_json_is_what_it_was(value: Any) -> None:
    assert _outcome(canonical_json, value) == _outcome(_reference_canonical_json, value)


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_the_walk_gives_what_it_gave(value: Any) -> None:
    new, old = _outcome(_as_jsonb_returns, value), _outcome(_reference_as_jsonb_returns, value)
    assert json.dumps(new, sort_keys=True, default=repr) == json.dumps(old, sort_keys=True, default=repr)


def test_jsonb_forms_are_written_whichever_way_the_value_is_encoded() -> None:
    assert canonical_json({"growth": -0.0, "big": 5.2e16, "note": "no e+ here"}) == (
        b'{"big":52000000000000000,"growth":0.0,"note":"no e+ here"}'
    )
    assert (
        canonical_json({"a": (1, 2.5), "b": MappingProxyType({"c": -0.0})}) == b'{"a":[1,2.5],"b":{"c":0.0}}'
    )
    assert canonical_json({"plain": [1, 2.5, "x", None, True]}) == b'{"plain":[1,2.5,"x",null,true]}'
    trace = {"x": 1.0, "chain": {"hash": "ignored"}, "operator_actions": []}
    assert content_hash(trace) == content_hash({"x": 1.0})


def test_values_json_refuses_are_refused_as_before() -> None:
    for value in ({"x": math.nan}, {"x": math.inf}, {"x": {1, 2}}, {"x": Decimal("1.5")}):
        assert _outcome(canonical_json, value) == _outcome(_reference_canonical_json, value)
