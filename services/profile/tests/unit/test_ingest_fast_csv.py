"""The fast CSV reader's own machinery: pieces cut at line ends outside quotes (and what happens when no
such line end comes), zip members read in place from a file on disk, the per-value shortcuts of the
column checks (blank strings, numbers, storable text) against the rules they stand for, and the field
size limit of Python's csv module."""

from __future__ import annotations

import csv
import io
import itertools
import math
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plaid_files import csv_files, messages, parse, to_zip, tx, user
from unit.test_ingest_fast import SYNTHETIC_TODAY, both, rejected, same, synthetic_users
from unit.test_ingest_properties import FX, users

from spendsense_profile.domain.ingest import columns, fast_csv, finalize, parse_file, stored_text
from spendsense_profile.domain.ingest.checks import _NUMBER

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _stored(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


# -- pieces -------------------------------------------------------------------------------------------------


@SETTINGS
@given(users(), st.integers(40, 400))
def test_small_pieces_give_the_streaming_readers_result(generated: list[dict[str, Any]], size: int) -> None:
    """Names with commas, quotes and line breaks (quoted fields over several lines), cut into pieces of
    a few rows: the pieces end at line ends outside quotes only."""
    files = csv_files(generated)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast_csv, "HEADER_BYTES", 512)
        patch.setattr(fast_csv, "BLOCK_BYTES", size)
        for data in (to_zip(files), _stored(files)):
            fast, slow = both(data, fx_rates=FX)
            assert slow.ok, messages(slow)
            same(fast, slow)


def _quoted_names(count: int, lines: int) -> dict[str, str]:
    """Transactions whose names are quoted fields of ``lines`` lines each."""
    name = "\n".join(f'SHOP "{i}", LINE' for i in range(lines))
    transactions = [tx(f"t{i}", name=name) for i in range(count)]
    return csv_files([user("u1", transactions=transactions)])


@pytest.mark.parametrize("runs", [40, 10_000])  # the quote check gives up after ten rows, or never
@pytest.mark.parametrize("lines", [1, 40])  # a row longer than two pieces: no cut, streamed instead
def test_a_file_that_cannot_be_cut_is_streamed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, runs: int, lines: int
) -> None:
    monkeypatch.setattr(fast_csv, "HEADER_BYTES", 512)
    monkeypatch.setattr(fast_csv, "BLOCK_BYTES", 300)
    monkeypatch.setattr(fast_csv, "ROWS_PER_CHECK", 3)
    monkeypatch.setattr(fast_csv, "MAX_QUOTE_RUNS", runs)
    files = _quoted_names(20, lines)
    for data in (to_zip(files), _stored(files)):
        fast, slow = both(data)
        assert slow.ok, messages(slow)
        same(fast, slow)
        path = tmp_path / "upload.zip"  # read in place (stored) or inflated from the file
        path.write_bytes(data)
        same(parse_file(path, reader="fast"), slow)


@pytest.mark.parametrize("bad", ['"STARBUCKS" 1234', '"STARBUCKS 1234'])
def test_malformed_quoting_in_a_streamed_tail_is_rejected(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    """When the quote check gave up, csv.reader reads the file: its verdict is the slow path's."""
    monkeypatch.setattr(fast_csv, "HEADER_BYTES", 512)
    monkeypatch.setattr(fast_csv, "BLOCK_BYTES", 200)
    monkeypatch.setattr(fast_csv, "MAX_QUOTE_RUNS", 2)
    files = _quoted_names(10, 1)
    transactions = files["transactions.csv"].splitlines(keepends=True)
    transactions[-1] = transactions[-1].replace('"SHOP ""0"", LINE"', bad)
    files["transactions.csv"] = "".join(transactions)
    fast, slow = both(to_zip(files))
    assert rejected(fast), messages(fast)
    assert not slow.ok
    assert parse(to_zip(files)).problems == slow.problems


# -- zip members read from a file on disk ---------------------------------------------------------------------


@pytest.mark.parametrize("stored", [True, False])
def test_a_zip_on_disk_gives_the_streaming_readers_result(tmp_path: Path, stored: bool) -> None:
    files = csv_files(synthetic_users(0, 1))
    path = tmp_path / "upload.zip"
    path.write_bytes(_stored(files) if stored else to_zip(files))
    fast = parse_file(path, reader="fast", today=SYNTHETIC_TODAY)
    slow = parse_file(path, reader="slow", today=SYNTHETIC_TODAY)
    assert slow.ok, messages(slow)
    same(fast, slow)


@pytest.mark.parametrize("stored", [True, False])
def test_a_damaged_member_on_disk_is_rejected(tmp_path: Path, stored: bool) -> None:
    """A byte changed inside transactions.csv: its CRC no longer matches (for a stored member, checked
    before the bytes are parsed in place)."""
    files = csv_files(synthetic_users(0))
    data = bytearray(_stored(files) if stored else to_zip(files))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("transactions.csv")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[middle] ^= 0x01
    path = tmp_path / "upload.zip"
    path.write_bytes(bytes(data))
    fast = parse_file(path, reader="fast", today=SYNTHETIC_TODAY)
    slow = parse_file(path, reader="slow", today=SYNTHETIC_TODAY)
    assert rejected(fast), messages(fast)
    assert not slow.ok
    assert parse_file(path, today=SYNTHETIC_TODAY).problems == slow.problems


# -- the field size limit -----------------------------------------------------------------------------------


def test_a_field_longer_than_csv_allows_is_left_to_the_streaming_reader() -> None:
    files = csv_files(
        [user("u1", transactions=[tx("t1", name="N" * (csv.field_size_limit() + 1)), tx("t2")])]
    )
    fast, slow = both(to_zip(files))
    assert rejected(fast), messages(fast)
    assert not slow.ok
    assert parse(to_zip(files)).problems == slow.problems


# -- the shortcuts against the rules they stand for -----------------------------------------------------------

_numberish = st.text(alphabet="0123456789+-.eE nafiINFty_x,", max_size=8)


@settings(max_examples=2000, deadline=None)
@given(_numberish)
def test_arrows_finite_numbers_are_the_ones_checks_accepts(text: str) -> None:
    """columns._numbers lets Arrow's cast decide: every finite number it reads matches checks._NUMBER,
    with Python's value."""
    try:
        value = pc.cast(pa.array([text]), pa.float64())[0].as_py()
    except pa.ArrowInvalid:
        return
    if math.isfinite(value):
        assert _NUMBER.fullmatch(text), text
        assert value == float(text)


_spaced = st.text(
    alphabet=st.sampled_from(["a", "\u00e9", " ", "\t", "\x1c", "\x85", "\xa0", "\u3000", "\u2028"])
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_spaced, min_size=1, max_size=8), st.integers(0, 3))
def test_the_blank_check_is_pythons(values: list[str], skip: int) -> None:
    array = pa.array(values).slice(min(skip, len(values) - 1))
    expected = any(not v.strip() for v in array.to_pylist())
    assert columns._any_blank(array) == expected


_stored_chars = st.text(alphabet=st.sampled_from(["a", "é", "€", "\x00", "𝄞"]), max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.none() | _stored_chars, min_size=1, max_size=6), st.integers(0, 3), st.integers(0, 6))
def test_the_plainly_storable_shortcut_never_passes_what_cannot_be_stored(
    values: list[str | None], skip: int, limit: int
) -> None:
    array = pa.array(values, pa.string()).slice(min(skip, len(values) - 1))
    if stored_text._plainly_storable(array, limit):
        assert all(v is None or stored_text.problem_with(v, limit) is None for v in array.to_pylist())


def test_text_the_database_cannot_store_is_named_by_both_readers() -> None:
    """A NUL, an id too long; and a category of 64 two-byte characters, which fits its 64 characters."""
    transactions = [
        tx("t1", name="Coffee\x00"),
        tx("t" * 129),
        tx("t3", personal_finance_category={"primary": "É" * 64, "detailed": None}),
    ]
    files = csv_files([user("u1", transactions=transactions)])
    fast, slow = both(to_zip(files))
    assert rejected(fast)
    assert {p.path for p in slow.problems} == {
        "transactions.csv:line 2.name",
        "transactions.csv:line 3.transaction_id",
    }
    assert parse(to_zip(files)).problems == slow.problems
    ok = csv_files([user("u1", transactions=transactions[2:])])
    same(*both(to_zip(ok)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab", min_size=9, max_size=10), max_size=12), st.lists(st.integers(0, 12)))
def test_the_distinct_ids_check_is_exact(ids: list[str], cuts: list[int]) -> None:
    """Hashed when every id has one length, by Arrow's unique otherwise: either way exactly "no id twice"."""
    bounds = sorted({0, len(ids), *(c for c in cuts if c <= len(ids))})
    chunks = [pa.array(ids[a:b], pa.string()) for a, b in itertools.pairwise(bounds)]
    values = pa.chunked_array(chunks, pa.string())
    assert finalize._all_distinct(values) == (len(set(ids)) == len(ids))


def _declared_size(data: bytes, name: str, size: int) -> bytes:
    """The archive with another uncompressed size for ``name`` in its central directory."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        length = int.from_bytes(out[at + 28 : at + 30], "little")
        if out[at + 46 : at + 46 + length] == name.encode():
            out[at + 24 : at + 28] = size.to_bytes(4, "little")
        at = out.find(b"PK\x01\x02", at + 46)
    return bytes(out)


@pytest.mark.parametrize("change", [-1, +1])
@pytest.mark.parametrize("stored", [True, False])
def test_a_member_of_another_size_than_declared_is_rejected(
    tmp_path: Path, stored: bool, change: int
) -> None:
    files = csv_files(synthetic_users(0))
    data = _stored(files) if stored else to_zip(files)
    data = _declared_size(data, "transactions.csv", len(files["transactions.csv"].encode()) + change)
    path = tmp_path / "upload.zip"
    path.write_bytes(data)
    for fast, slow in (
        both(data, today=SYNTHETIC_TODAY),
        (
            parse_file(path, reader="fast", today=SYNTHETIC_TODAY),
            parse_file(path, reader="slow", today=SYNTHETIC_TODAY),
        ),
    ):
        assert rejected(fast), messages(fast)  # zipfile may take it all the same: then so does "auto"
        auto = parse_file(path, today=SYNTHETIC_TODAY)
        assert (auto.problems, auto.user_ids) == (slow.problems, slow.user_ids)
