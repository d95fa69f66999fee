"""CloudWatch embedded metric format (EMF) records."""

from __future__ import annotations

import json
import time

from hypothesis import given
from hypothesis import strategies as st

from spendsense_shared.metrics import emf_record, write_emf

UNITS = ("Milliseconds", "Count", "Bytes", "Seconds", "Percent", "None")


def assert_valid_emf(document: dict, namespace: str, dimensions: dict, values: dict) -> None:
    """The structure CloudWatch Logs requires to extract metrics from a log line."""
    json.dumps(document)  # serializable
    aws = document["_aws"]
    assert isinstance(aws["Timestamp"], int)
    assert abs(aws["Timestamp"] - time.time() * 1000) < 60_000  # milliseconds since the epoch
    [directive] = aws["CloudWatchMetrics"]
    assert directive["Namespace"] == namespace
    assert directive["Dimensions"] == [list(dimensions)]
    assert all(len(dimension_set) <= 30 for dimension_set in directive["Dimensions"])
    assert [m["Name"] for m in directive["Metrics"]] == list(values)
    assert all(m["Unit"] in UNITS for m in directive["Metrics"])
    # Every dimension and metric named in the directive is a top-level member with its value.
    for name, value in dimensions.items():
        assert document[name] == value
        assert isinstance(document[name], str)
    for name, value in values.items():
        assert document[name] == value
        assert isinstance(document[name], int | float)


def test_emf_record_for_a_request():
    document = emf_record(
        "SpendSense",
        {"Service": "profile", "Route": "GET /api/v1/profile/{user_id}"},
        {"Latency": 12.5, "Requests": 1, "Errors5xx": 0},
        {"Latency": "Milliseconds", "Requests": "Count", "Errors5xx": "Count"},
    )

    assert_valid_emf(
        document,
        "SpendSense",
        {"Service": "profile", "Route": "GET /api/v1/profile/{user_id}"},
        {"Latency": 12.5, "Requests": 1, "Errors5xx": 0},
    )
    units = {m["Name"]: m["Unit"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"Latency": "Milliseconds", "Requests": "Count", "Errors5xx": "Count"}


def test_metric_without_a_unit_gets_unit_none():
    document = emf_record("NS", {"Service": "s"}, {"Depth": 3}, {})

    assert document["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "Depth", "Unit": "None"}]


NAMES = st.from_regex(r"\A[A-Z][A-Za-z0-9]{0,15}\Z")


@given(
    names=st.lists(NAMES, min_size=2, max_size=12, unique=True),
    data=st.data(),
)
def test_emf_record_is_valid_for_any_dimensions_and_metrics(names, data):
    split = data.draw(st.integers(1, len(names) - 1), label="split")
    dimensions = {n: data.draw(st.text(min_size=1, max_size=20), label=n) for n in names[:split]}
    values = {
        n: data.draw(st.integers(0, 10**9) | st.floats(0, 1e9, allow_nan=False), label=n)
        for n in names[split:]
    }
    units = {n: data.draw(st.sampled_from(UNITS), label=f"unit {n}") for n in values}

    assert_valid_emf(emf_record("SpendSense", dimensions, values, units), "SpendSense", dimensions, values)


def test_write_emf_writes_one_json_line_to_stdout(capsys):
    write_emf("SpendSense", {"Service": "worker"}, {"Handled": 4}, {"Handled": "Count"})

    out = capsys.readouterr().out
    assert out.endswith("\n")
    assert out.count("\n") == 1
    assert_valid_emf(json.loads(out), "SpendSense", {"Service": "worker"}, {"Handled": 4})
