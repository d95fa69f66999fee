"""The fast reader (msgspec + pyarrow) against the streaming one: the same result for a valid upload, a
rejection for an invalid one (which the streaming reader then names), and never an exception.

``parse_upload(reader="fast")`` is the fast reader alone (a rejected upload has one problem at ``$``),
``reader="slow"`` the streaming reader alone, and the default ``"auto"`` the fast one with the streaming
one behind it for what it rejects."""

from __future__ import annotations

import copy
import csv
import io
import json
import random
import sys
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plaid_files import TODAY, account, card, csv_files, messages, parse, to_json, to_jsonl, to_zip, tx, user
from unit.test_ingest_properties import (
    CSV_COLUMNS,
    FX,
    _json_path,
    _locations,
    _set,
    json_values,
    single_line,
    users,
)

from spendsense_cli.synthetic import build_user
from spendsense_profile.domain.ingest import ParsedUpload, columns, fast_csv, fast_json, parse_span
from spendsense_profile.domain.ingest.columns import Rejected
from spendsense_profile.domain.ingest.fast_csv import QuoteCheck

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The synthetic users' data ends on 2026-10-31; their card payments are due up to a month later.
SYNTHETIC_TODAY = TODAY.replace(year=2026, month=11, day=1)


def same(fast: ParsedUpload, slow: ParsedUpload) -> None:
    """Two results are the same upload: tables, users, notes, problems, as-of date, format."""
    assert fast.ok, messages(fast)
    assert fast.problems == slow.problems
    assert fast.user_ids == slow.user_ids
    assert fast.notes == slow.notes
    assert fast.as_of == slow.as_of
    assert fast.format == slow.format
    assert fast.removed_transaction_ids == slow.removed_transaction_ids
    for name, table in slow.tables.items():
        assert fast.tables[name].schema.equals(table.schema), name
        assert fast.tables[name].equals(table), name


def both(data: bytes, **options: Any) -> tuple[ParsedUpload, ParsedUpload]:
    return parse(data, reader="fast", **options), parse(data, reader="slow", **options)


def rejected(result: ParsedUpload) -> bool:
    return len(result.problems) == 1 and result.problems[0].reason.startswith("rejected by the fast reader")


# -- valid uploads: the same result --------------------------------------------------------------------------


@SETTINGS
@given(users())
def test_the_fast_reader_gives_the_streaming_readers_result(generated: list[dict[str, Any]]) -> None:
    uploads = {
        "json": to_json({"users": generated}),
        "jsonl": to_jsonl(generated),
        "zip": to_zip(csv_files(generated)),
        "json-single": to_json(generated[0]),
    }
    for fmt, data in uploads.items():
        fast, slow = both(data, fx_rates=FX)
        assert slow.ok, (fmt, messages(slow))
        same(fast, slow)


@cache
def synthetic(index: int) -> dict[str, Any]:
    return build_user(index, seed=7, months=6)[0]


def synthetic_users(*indexes: int) -> list[dict[str, Any]]:
    return [copy.deepcopy(synthetic(i)) for i in indexes]


@pytest.mark.parametrize(
    "shape",
    ["json", "json-pretty", "json-single", "jsonl", "jsonl-crlf-blank-lines", "zip", "zip-stored"],
)
def test_synthetic_users_in_every_shape(shape: str) -> None:
    generated = synthetic_users(0, 1, 2)
    data = {
        "json": lambda: to_json({"users": generated}),
        "json-pretty": lambda: json.dumps({"users": generated}, indent=2).encode(),
        "json-single": lambda: json.dumps(generated[0], indent=1).encode(),
        "jsonl": lambda: to_jsonl(generated),
        "jsonl-crlf-blank-lines": lambda: b"\r\n".join(
            [b"", *(json.dumps(u).encode() for u in generated), b" "]
        ),
        "zip": lambda: to_zip(csv_files(generated)),
        "zip-stored": lambda: _stored_zip(csv_files(generated)),
    }[shape]()
    fast, slow = both(data, today=SYNTHETIC_TODAY)
    assert slow.ok, messages(slow)
    in_upload = generated[:1] if shape == "json-single" else generated
    assert fast.tables["transactions"].num_rows == sum(len(u["transactions"]) for u in in_upload)
    same(fast, slow)


def _stored_zip(files: dict[str, str]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@SETTINGS
@given(users(), st.binary(max_size=40), st.binary(max_size=40))
def test_a_span_is_parsed_as_its_bytes_alone(
    generated: list[dict[str, Any]], before: bytes, after: bytes
) -> None:
    """``parse_span`` reads bytes ``start:stop`` in place (``spendsense analyze``'s pieces of a memory map):
    the result of the fast reader given those bytes alone, whatever lies around them."""
    uploads = {
        "json": to_json({"users": generated}),
        "jsonl": to_jsonl(generated),
        "csv": csv_files(generated)["transactions.csv"].encode(),  # alone: rejected, by both
    }
    for fmt, data in uploads.items():
        alone = parse(data, reader="fast", filename=f"upload.{fmt}")
        span = parse_span(before + data + after, len(before), len(before) + len(data), fmt, today=TODAY)
        assert span.problems == alone.problems, fmt
        if alone.ok:
            same(span, alone)


def test_a_span_outside_the_bytes_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no span"):
        parse_span(b"{}", 1, 3, "json")
    with pytest.raises(ValueError, match="no span"):
        parse_span(b"{}", 0, 2, "zip")


def test_a_lone_transactions_csv_and_a_utf8_bom() -> None:
    files = csv_files([user("u1", transactions=[tx("t1"), tx("t2", name='SHOP "A", INC')])])
    fast, slow = both(b"\xef\xbb\xbf" + files["transactions.csv"].encode(), filename="t.csv")
    assert rejected(fast)  # alone, its accounts are unknown: the streaming reader says so
    assert not slow.ok
    fast, slow = both(b"\xef\xbb\xbf" + to_json(user()))
    same(fast, slow)


def test_small_chunks_and_a_user_larger_than_a_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Users are handed to pyarrow by chunks, and a very large user a few transactions at a time."""
    monkeypatch.setattr(fast_json, "CHUNK_BYTES", 40_000)
    monkeypatch.setattr(fast_json, "TRANSACTIONS_PER_CHUNK", 50)
    monkeypatch.setattr(fast_csv, "BLOCK_BYTES", 8_192)
    monkeypatch.setattr(fast_csv, "ROWS_PER_CHECK", 100)
    generated = synthetic_users(3, 4, 5)
    generated[1]["transactions"] = [{**t, "extra": [1, {"a": None}]} for t in generated[1]["transactions"]]
    for data in (
        to_json({"users": generated}),
        json.dumps({"users": generated}, indent=2).encode(),
        to_jsonl(generated),
        to_json(generated[0]),
        to_zip(csv_files(generated)),
    ):
        fast, slow = both(data, today=SYNTHETIC_TODAY)
        same(fast, slow)


# -- invalid uploads: the fast reader rejects, the streaming reader names ------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b'{"users": [{"user_id": "u1", "accounts": [], "user_id": "u2"}]}',  # a key twice (msgspec keeps the last)
        b'{"users": [], "users": [{"user_id": "u1"}]}',
        b'{"user_id": "u1", "accounts": [], "transactions": [null]}',
        b'{"user_id": "u1", "transactions": [{"transaction_id": "t", "transaction_id": "u"}]}',
        b'{"user_id": "u1", "transactions": 5}',
        b'{"user_id": "u1", "transactions": {}}',
        b'{"user_id": "u1", "accounts": [], "note": 1}',  # unknown keys are noted by the streaming reader
        b'{"user_id": "u1"}\n{"user_id": "u2"}',  # JSON Lines without the name
        b'{"accounts_get": {"accounts": []}, "user_id": "u1"}',  # Plaid envelopes are the streaming reader's
        b'{"user_id": "u1", "transactions": [{"amount": 1e999}]}',
        b"null",
        b"[]",
        b'{"users": null}',
        b'{"users": [1, null]}',
        b'{"user_id": "u1", "accounts": [], "transactions": []} trailing',
    ],
)
def test_what_the_fast_reader_leaves_to_the_streaming_one(data: bytes) -> None:
    fast = parse(data, reader="fast")
    slow = parse(data, reader="slow")
    auto = parse(data)
    assert rejected(fast) or (fast.ok and slow.ok)
    assert auto.problems == slow.problems
    assert auto.notes == slow.notes


@pytest.mark.parametrize(
    "line",
    ["null", "5", '"x"', "[]", '{"users": []}', '{"user_id": "u2", "transactions": [null]}', "{"],
)
def test_json_lines_that_are_not_user_objects(line: str) -> None:
    data = to_json(user("u1")) + b"\n" + line.encode() + b"\n"
    fast, slow = both(data, filename="x.jsonl")
    assert rejected(fast)
    assert parse(data, filename="x.jsonl").problems == slow.problems


@pytest.mark.parametrize(
    "text",
    [
        'SHOP "A" INC',  # a quote inside an unquoted field is text for both readers: accepted
        'x"y',
    ],
)
def test_quotes_inside_unquoted_csv_fields(text: str) -> None:
    rows = csv_files([user("u1", transactions=[tx("t1"), tx("t2")])])
    files = {**rows, "transactions.csv": rows["transactions.csv"].replace("STARBUCKS 1234", text)}
    fast, slow = both(to_zip(files))
    same(fast, slow)


@pytest.mark.parametrize("bad", ['"STARBUCKS" 1234', '"STARBUCKS 1234'])
def test_malformed_csv_quoting_is_left_to_the_streaming_reader(bad: str) -> None:
    rows = csv_files([user("u1", transactions=[tx("t1"), tx("t2")])])
    files = {**rows, "transactions.csv": rows["transactions.csv"].replace("STARBUCKS 1234", bad, 1)}
    fast, slow = both(to_zip(files))
    assert rejected(fast)
    assert not slow.ok
    assert parse(to_zip(files)).problems == slow.problems


# The property the issue asks for: any single corrupted field of a valid generated file is reported at its
# path, by the fast path (which rejects the file and has the streaming reader name the problems) and by the
# streaming reader alone, in JSON, JSON Lines and CSV.


def _corrupted_json(data: st.DataObject) -> tuple[list[dict[str, Any]], str]:
    generated = synthetic_users(data.draw(st.integers(0, 5), label="user"), 6)
    k = data.draw(st.integers(0, 1), label="which")
    location, bad_values = data.draw(st.sampled_from(_locations(generated[k])), label="field")
    _set(generated[k], location, data.draw(st.sampled_from(bad_values), label="value"))
    return generated, f"users[{k}].{_json_path(location)}"


def _check(data: bytes, expected: str, **options: Any) -> None:
    fast = parse(data, reader="fast", today=SYNTHETIC_TODAY, fx_rates=FX, **options)
    slow = parse(data, reader="slow", today=SYNTHETIC_TODAY, fx_rates=FX, **options)
    auto = parse(data, today=SYNTHETIC_TODAY, fx_rates=FX, **options)
    assert rejected(fast), messages(fast)
    assert expected in [p.path for p in slow.problems], (expected, messages(slow))
    assert auto.problems == slow.problems
    assert auto.notes == slow.notes


@SETTINGS
@given(st.data())
def test_a_corrupted_field_in_json_is_named_by_both_paths(data: st.DataObject) -> None:
    generated, expected = _corrupted_json(data)
    _check(to_json({"users": generated}), expected)


@SETTINGS
@given(st.data())
def test_a_corrupted_field_in_json_lines_is_named_by_both_paths(data: st.DataObject) -> None:
    generated, expected = _corrupted_json(data)
    _check(to_jsonl(generated), expected)


@SETTINGS
@given(st.data())
def test_a_corrupted_cell_in_csv_is_named_by_both_paths(data: st.DataObject) -> None:
    files = csv_files(synthetic_users(data.draw(st.integers(0, 5), label="user"), 6))
    tables = {name: list(csv.reader(io.StringIO(text))) for name, text in files.items()}
    name = data.draw(st.sampled_from(sorted(tables)), label="file")
    row = data.draw(st.integers(1, len(tables[name]) - 1), label="row")
    column = data.draw(st.sampled_from(sorted(CSV_COLUMNS[name])), label="column")
    bad = data.draw(st.sampled_from(CSV_COLUMNS[name][column]), label="value")
    rows = tables[name]
    rows[row][rows[0].index(column)] = bad
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    files[name] = buffer.getvalue()
    _check(to_zip(files), f"{name}:line {row + 1}.{column}")


# -- never an exception -----------------------------------------------------------------------------------------


@SETTINGS
@given(users(max_users=2, text=single_line), st.data())
def test_any_value_anywhere_never_raises_in_the_fast_reader(
    generated: list[dict[str, Any]], data: st.DataObject
) -> None:
    k = data.draw(st.integers(0, len(generated) - 1))
    location, _ = data.draw(st.sampled_from(_locations(generated[k])), label="field")
    _set(generated[k], location, data.draw(json_values, label="value"))
    for payload, options in (
        (to_json({"users": generated}), {}),
        (to_jsonl(generated), {"filename": "x.jsonl"}),
        (to_json(generated[0]), {}),
    ):
        fast = parse(payload, reader="fast", fx_rates=FX, **options)
        assert fast.ok or rejected(fast)
        if fast.ok:
            same(fast, parse(payload, reader="slow", fx_rates=FX, **options))


@SETTINGS
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes_never_raise_in_the_fast_reader(data: bytes) -> None:
    for name in ("x.json", "x.jsonl", "x.csv", None):
        result = parse(data, reader="fast", filename=name, default_user_id="u1")
        assert result.ok or result.problems


# -- the quote check ----------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet='ab,"\n\r', max_size=40), st.randoms(use_true_random=False))
def test_the_quote_check_accepts_what_csv_reader_accepts(text: str, rng: random.Random) -> None:
    """QuoteCheck is csv.reader (strict) as far as quotes go, however the bytes are split into chunks."""
    try:
        list(csv.reader(io.StringIO(text, newline=""), strict=True))
        expected = True
    except csv.Error:
        expected = False
    data = text.encode()
    check = QuoteCheck()
    cuts = sorted(rng.sample(range(len(data) + 1), min(3, len(data) + 1)))
    try:
        for begin, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            check.feed(data[begin:end])
        check.finish()
        accepted = True
    except Rejected:
        accepted = False
    assert accepted == expected, text


def test_the_whitespace_of_the_column_checks_is_pythons() -> None:
    assert "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()) == columns._WHITESPACE


def test_an_account_in_csv_and_json_with_the_fast_reader() -> None:
    generated = [user("u1", accounts=[account(), account("acc_2", name="Second"), card()])]
    for data in (to_json(generated[0]), to_zip(csv_files(generated))):
        fast, slow = both(data)
        same(fast, slow)
