"""What the parsing process makes of the received file before the parser sees it: a gzip stream inflated
(by ISA-L) beside it and parsed as the plain upload would be; a broken gzip stream, whichever way it is
broken, is an invalid upload (not a crash); a plain file larger than the decompressed budget is over it
without being read; the parser is handed the file itself (so the fast reader maps it: no copy)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from spendsense_cli.synthetic import build_user
from spendsense_profile.adapters.parse_child import parse_path
from spendsense_profile.domain.ingest import ParsedUpload, parse_upload
from spendsense_profile.domain.uploads import BudgetExceeded

OPTIONS = {"fx_rates": {}, "default_user_id": "ops"}
LINES = "".join(json.dumps(build_user(k, seed=5)[0]) + "\n" for k in range(3)).encode()


def _parse(path: Path, filename: str, limit: int = 1 << 30, parse: Any = parse_upload) -> Any:
    return parse_path(path, filename, None, limit, parse, dict(OPTIONS))


def test_a_gzip_stream_is_parsed_as_the_plain_upload(tmp_path: Path) -> None:
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    plain.write_bytes(LINES)
    packed.write_bytes(gzip.compress(LINES))
    expected = _parse(plain, "users.jsonl")
    got = _parse(packed, "users.jsonl.gz")
    assert isinstance(got, ParsedUpload)
    assert got.ok, got
    assert got.user_ids == expected.user_ids
    for name, table in expected.tables.items():
        assert got.tables[name].equals(table), name


@pytest.mark.parametrize(
    "broken",
    [
        lambda body: body[:10] + bytes(b ^ 0x5A for b in body[10:40]) + body[40:],  # corrupt deflate data
        lambda body: body[: len(body) // 2],  # cut short
        lambda body: body[:3] + b"\x07" + body[4:],  # unknown flags
    ],
    ids=["corrupt", "truncated", "bad-header"],
)
def test_a_broken_gzip_stream_is_an_invalid_upload(tmp_path: Path, broken: Any) -> None:
    path = tmp_path / "upload"
    path.write_bytes(broken(gzip.compress(LINES)))
    got = _parse(path, "users.jsonl.gz")
    assert isinstance(got, ParsedUpload), got
    assert [p.path for p in got.problems] == ["$"]
    assert got.problems[0].reason.startswith("not a valid gzip stream")


def test_a_plain_file_over_the_decompressed_budget_is_over_it(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(LINES)
    assert _parse(path, "users.jsonl", limit=len(LINES) - 1) == BudgetExceeded(
        "decompressed_bytes", len(LINES) - 1
    )
    assert isinstance(_parse(path, "users.jsonl", limit=len(LINES)), ParsedUpload)


def _file_name(source: Any, **_: Any) -> str:
    return str(source.name)


@pytest.mark.parametrize("packed", [False, True])
def test_the_parser_is_handed_a_file_on_disk(tmp_path: Path, packed: bool) -> None:
    path = tmp_path / "upload"
    path.write_bytes(gzip.compress(LINES) if packed else LINES)
    handed = Path(_parse(path, "users.jsonl.gz" if packed else "users.jsonl", parse=_file_name))
    assert handed.read_bytes() == LINES
    assert handed == (path.with_name("upload.inflated") if packed else path)


def test_working_files_go_to_shared_memory_only_when_it_has_room(monkeypatch: pytest.MonkeyPatch) -> None:
    from spendsense_profile.adapters import parsing

    if not parsing.SHARED_MEMORY.is_dir():
        pytest.skip("no /dev/shm here")
    assert parsing.scratch_dir(1) == str(parsing.SHARED_MEMORY)
    assert parsing.scratch_dir(1 << 60) is None  # an exabyte: the system's temporary directory
    monkeypatch.setattr(parsing, "SHARED_MEMORY", Path("/no/such/place"))
    assert parsing.scratch_dir(1) is None
