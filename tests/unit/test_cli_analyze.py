"""``spendsense analyze`` in pieces (one process each) writes the very bytes of the whole file parsed and
analyzed in one process, and names the same problems when the file is invalid, whichever the cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from spendsense_cli import analyze as cli_analyze
from spendsense_cli.analyze import analyze_file_json, cut, cut_bytes
from spendsense_cli.console import analyze_arguments, run_analyze
from spendsense_cli.main import app
from spendsense_cli.synthetic import build_user
from spendsense_features.domain.analysis import analyze_json
from spendsense_features.domain.rules import load_rule_set
from spendsense_profile.domain.ingest import parse_file

USERS = [build_user(i, seed=11)[0] for i in range(9)]


@pytest.fixture(autouse=True)
def _small_files_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_analyze, "PARALLEL_FROM_BYTES", 0)


def _document(users: list[dict[str, Any]], path: Path, *, indent: int | None = None) -> Path:
    path.write_text(json.dumps({"users": users}, indent=indent))
    return path


def _lines(users: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(u) + "\n" for u in users))
    return path


def _whole(path: Path, *, pretty: bool = False) -> bytes:
    """The reference: the file parsed whole and analyzed in one process."""
    parsed = parse_file(path)
    assert parsed.ok, parsed.problems
    return analyze_json(parsed.tables, load_rule_set(), pretty=pretty)


def _problems(path: Path, processes: int) -> str:
    with pytest.raises(ValueError, match=r"\S") as raised:
        analyze_file_json(path, processes=processes)
    return str(raised.value)


@pytest.mark.parametrize("processes", [2, 3, 4])
@pytest.mark.parametrize("shape", ["document", "pretty document", "lines"])
def test_the_pieces_write_the_bytes_of_the_whole(tmp_path: Path, shape: str, processes: int) -> None:
    users = list(reversed(USERS))  # pieces whose user ids interleave: the merge orders them
    if shape == "lines":
        path = _lines(users, tmp_path / "users.jsonl")
    else:
        path = _document(users, tmp_path / "users.json", indent=2 if shape == "pretty document" else None)
    pieces = cut(path, processes)
    assert pieces is not None
    assert len(pieces) == processes
    assert analyze_file_json(path, processes=processes) == _whole(path)
    assert analyze_file_json(path, processes=processes, pretty=True) == _whole(path, pretty=True)


def test_a_cut_that_is_no_user_boundary_falls_back_to_the_whole(tmp_path: Path) -> None:
    """Objects inside a user that begin as a user does (an unknown field the slow reader notes), at the
    middle of the file: the piece cut there is rejected, and the file parsed whole gives the reports."""
    users = json.loads(json.dumps(USERS[:2]))
    users[0]["accounts"][0]["extra"] = [{"transactions": k} for k in range(40_000)]
    path = _document(users, tmp_path / "nested.json")
    pieces = cut(path, 2)
    assert pieces is not None
    assert b'{"transactions": ' in path.read_bytes()[pieces[1].start : pieces[1].start + 20]
    assert analyze_file_json(path, processes=2) == _whole(path)


def test_a_boundary_inside_a_string_is_no_cut(tmp_path: Path) -> None:
    """Within a JSON string every quote is escaped: text that looks like a boundary is never cut at."""
    users = json.loads(json.dumps(USERS[:2]))
    users[0]["transactions"][0]["merchant_name"] = '},{"user_id":"not-a-user"}' * 50_000
    path = _document(users, tmp_path / "string.json")
    pieces = cut(path, 2)
    assert pieces is None or b'"syn-11-000001"' in path.read_bytes()[pieces[1].start : pieces[1].start + 40]
    assert analyze_file_json(path, processes=2) == _whole(path)


@pytest.mark.parametrize("where", ["user", "transaction"])
def test_ids_given_in_two_pieces_are_reported_as_the_whole_reports_them(tmp_path: Path, where: str) -> None:
    users = json.loads(json.dumps(USERS[:4]))
    if where == "user":
        users[3]["user_id"] = users[0]["user_id"]
    else:
        users[3]["transactions"][0]["transaction_id"] = users[0]["transactions"][0]["transaction_id"]
    path = _document(users, tmp_path / "twice.json")
    whole = _problems(path, processes=1)
    assert "duplicate" in whole
    assert _problems(path, processes=2) == whole


def test_a_problem_in_one_piece_is_named_with_its_path_in_the_whole(tmp_path: Path) -> None:
    users = json.loads(json.dumps(USERS[:4]))
    users[3]["transactions"][5]["amount"] = "12.50"
    path = _lines(users, tmp_path / "bad.jsonl")
    message = _problems(path, processes=2)
    assert "users[3].transactions[5].amount" in message
    assert message == _problems(path, processes=1)


def test_a_piece_whose_process_fails_falls_back_to_the_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forked piece that raises (or dies) answers nothing: the file is parsed and analyzed whole."""
    parent = os.getpid()
    analyze_piece = cli_analyze._analyze

    def failing_in_children(*args: Any) -> Any:
        if os.getpid() != parent:
            raise RuntimeError("a piece's process failed")
        return analyze_piece(*args)

    monkeypatch.setattr(cli_analyze, "_analyze", failing_in_children)
    path = _lines(USERS, tmp_path / "users.jsonl")
    pieces = cut(path, 3)
    assert pieces is not None
    assert cli_analyze._in_pieces(path, pieces, load_rule_set(), date.today(), None) is None
    assert analyze_file_json(path, processes=3) == _whole(path)


def test_alike_id_hashes_in_two_pieces_fall_back_to_the_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pieces compare their transaction ids as 64-bit hashes: hashes alike (by chance, here forced) send
    the file to the whole parse, which tells the ids apart; ids of several lengths are compared as ids."""
    path = _lines(USERS, tmp_path / "users.jsonl")
    pieces = cut(path, 2)
    assert pieces is not None
    monkeypatch.setattr(cli_analyze, "same_length_hashes", lambda ids: np.zeros(len(ids), np.uint64))
    assert cli_analyze._in_pieces(path, pieces, load_rule_set(), date.today(), None) is None
    assert analyze_file_json(path, processes=2) == _whole(path)
    monkeypatch.setattr(cli_analyze, "same_length_hashes", lambda ids: None)
    assert cli_analyze._in_pieces(path, pieces, load_rule_set(), date.today(), None) is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sets(st.integers(0, 40), max_size=12), min_size=1, max_size=4))
def test_shared_hashes_are_found_in_any_two_pieces(pieces: list[set[int]]) -> None:
    arrays = [np.array(sorted(p), dtype=np.uint64) for p in pieces]
    shared = any(a & b for i, a in enumerate(pieces) for b in pieces[i + 1 :])
    assert cli_analyze._any_shared(arrays) == shared


def test_the_command_writes_the_same_bytes_with_one_process_or_two(tmp_path: Path) -> None:
    path = _document(USERS, tmp_path / "users.json")
    runner = CliRunner()
    one = runner.invoke(app, ["analyze", str(path), "--processes", "1"])
    two = runner.invoke(app, ["analyze", str(path), "--processes", "2"])
    assert one.exit_code == two.exit_code == 0, two.output
    assert one.stdout_bytes == two.stdout_bytes == _whole(path) + b"\n"


@pytest.mark.parametrize(
    "options",
    [[], ["--pretty"], ["--format", "table"], ["--processes=1", "--as-of", "2026-10-01"], ["--as-of="]],
)
def test_the_console_script_writes_what_typer_writes(
    tmp_path: Path, options: list[str], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """``spendsense analyze`` as the console script reads it (:mod:`spendsense_cli.console`, without
    Typer): the same bytes and exit status as through Typer."""
    path = _lines(USERS[:3], tmp_path / "users.jsonl")
    argv = ["analyze", str(path), *options]
    options_read = analyze_arguments(argv)
    assert options_read is not None
    through_typer = CliRunner().invoke(app, argv)
    assert run_analyze(**options_read) == through_typer.exit_code == 0, through_typer.output
    assert capsysbinary.readouterr().out == through_typer.stdout_bytes


def test_an_invalid_file_exits_2_from_the_console_script(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"user_id": 5}\n')
    options = analyze_arguments(["analyze", str(path)])
    assert options is not None
    assert run_analyze(**options) == 2
    problems = capsysbinary.readouterr().err
    assert b"user_id" in problems
    assert problems == CliRunner().invoke(app, ["analyze", str(path)]).stderr_bytes


def test_the_installed_console_script_writes_everything_before_it_exits(tmp_path: Path) -> None:
    """The script ends with ``os._exit`` (no interpreter teardown): what is written must be whole all the
    same, a report larger than a pipe's buffer as well as a table smaller than the stream's, and the
    status must be the command's."""
    script = Path(sys.executable).with_name("spendsense")
    path = _lines(USERS, tmp_path / "users.jsonl")
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run(
        [script, "analyze", str(path), "--pretty"], capture_output=True, check=False, env=buffered
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) > 65536
    assert done.stdout == _whole(path, pretty=True) + b"\n"
    table = subprocess.run(
        [script, "analyze", str(path), "--format", "table"], capture_output=True, check=False, env=buffered
    )
    assert table.stdout == CliRunner().invoke(app, ["analyze", str(path), "--format", "table"]).stdout_bytes
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_id": 5}\n')
    failed = subprocess.run([script, "analyze", str(bad)], capture_output=True, check=False, env=buffered)
    assert failed.returncode == 2
    assert b"user_id" in failed.stderr
    typer_help = subprocess.run([script, "analyze", "--help"], capture_output=True, check=False, env=buffered)
    assert typer_help.returncode == 0
    assert b"--processes" in typer_help.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze"],
        ["analyze", "--help"],
        ["analyze", "FILE", "--pretty", "x"],
        ["analyze", "FILE", "--format", "csv"],
        ["analyze", "FILE", "--processes", "0"],
        ["analyze", "FILE", "--processes"],
        ["analyze", "FILE", "--as-of", "2026-13-01"],
        ["analyze", "FILE", "--no-pretty"],
        ["analyze", "missing.json"],
        ["analyze", "."],
        ["generate"],
    ],
)
def test_anything_else_goes_to_typer(tmp_path: Path, argv: list[str]) -> None:
    path = _lines(USERS[:1], tmp_path / "users.jsonl")
    assert analyze_arguments([str(path) if a == "FILE" else a for a in argv]) is None


def test_only_plain_users_documents_and_json_lines_are_cut(tmp_path: Path) -> None:
    one_user = tmp_path / "one.json"
    one_user.write_text(json.dumps(USERS[0]))
    assert cut(one_user, 2) is None  # one user object: no users list to cut
    assert cut_bytes(b'{"accounts": [], "users": [{}, {}]}', "json", 2) is None
    assert cut_bytes(b'{"users": [{"user_id": "a"}]}', "json", 2) is None  # no boundary near the middle
    assert cut_bytes(b"user_id,account_id\nu,a\n", "csv", 2) is None


_NAMES = st.text(st.characters(codec="utf-8"), max_size=12)
_USER = st.fixed_dictionaries(
    {"user_id": _NAMES, "accounts": st.lists(st.fixed_dictionaries({"name": _NAMES}), max_size=3)}
)


@settings(max_examples=200, deadline=None)
@given(
    users=st.lists(_USER, min_size=1, max_size=12), parts=st.integers(2, 4), indent=st.sampled_from([None, 1])
)
def test_pieces_hold_the_users_in_order_when_the_cuts_are_between_users(
    users: list[dict[str, Any]], parts: int, indent: int | None
) -> None:
    """Pieces are whole JSON documents; when each is a ``users`` document, together they hold every user
    once, in order (a cut inside a string makes a piece that is not: the fast reader rejects it)."""
    data = json.dumps({"users": users}, indent=indent).encode()
    pieces = cut_bytes(data, "json", parts)
    if pieces is None:
        return
    assert pieces[0].start == 0
    assert pieces[-1].stop == len(data)
    found: list[dict[str, Any]] = []
    for piece in pieces:
        try:
            found += orjson.loads(piece.head + data[piece.start : piece.stop] + piece.tail)["users"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return  # a cut that is no boundary: the fast reader refuses that piece, the file is read whole
    assert found == users
