"""The ``spendsense`` console script. ``spendsense analyze FILE [options]`` is read and run here without
Typer when :func:`analyze_arguments` takes every argument for certain: importing Typer and letting it
parse (it imports pydantic and builds a validator for every parameter) costs a tenth of what the command
may take. Anything else — ``--help``, a value Typer would refuse, an option it does not know, any other
command — goes to the Typer app in :mod:`spendsense_cli.main`, which says what it always says.

This module imports nothing heavy: it is what every ``spendsense`` command starts with."""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

_ANALYZE_VALUES = {"--as-of": "as_of", "--format": "output", "--processes": "processes"}


def main() -> NoReturn:
    """The console script's entry point."""
    options = analyze_arguments(sys.argv[1:])
    if options is None:
        from spendsense_cli.main import app

        app()  # Typer exits with the command's status
        raise SystemExit(0)
    code = run_analyze(**options)
    # A one-shot command that has written everything: the interpreter's teardown (freeing the tables,
    # the reports and every module's objects) is 0.1-0.25 s of a ~2 s run and changes nothing anyone sees.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_analyze(
    file: Path,
    as_of: str | None = None,
    output: str = "json",
    pretty: bool = False,
    processes: int | None = None,
) -> int:
    """``spendsense analyze`` with arguments already checked (:func:`analyze_arguments`, or Typer's): the
    report on stdout, or every problem of an invalid file on stderr. The exit status: 0, or 2 for an
    invalid file."""
    from spendsense_cli.analyze import analyze_file_json
    from spendsense_shared.processes import use_system_allocator

    use_system_allocator()
    anchor = date.fromisoformat(as_of) if as_of else None
    try:
        body = analyze_file_json(
            file, as_of=anchor, processes=processes or os.cpu_count() or 1, pretty=pretty and output == "json"
        )
    except ValueError as exc:  # an invalid file: every problem, with its path
        sys.stderr.write(f"{exc}\n")
        return 2
    if output == "table":
        import orjson

        from spendsense_features.domain.analysis import render_table

        sys.stdout.write(render_table(orjson.loads(body)) + "\n")
        return 0
    sys.stdout.flush()
    sys.stdout.buffer.write(body + b"\n")
    return 0


def analyze_arguments(argv: list[str]) -> dict[str, Any] | None:
    """``analyze``'s arguments as :func:`run_analyze` takes them when ``argv`` is ``analyze FILE`` with
    options it accepts (``--as-of D``, ``--format json|table``, ``--pretty``, ``--processes N``, a value
    after a space or an ``=``); None for anything else, which Typer reads."""
    if argv[:1] != ["analyze"]:
        return None
    found: dict[str, Any] = {}
    files: list[str] = []
    rest = iter(argv[1:])
    for arg in rest:
        name, equals, value = arg.partition("=")
        if name in _ANALYZE_VALUES:
            value = value if equals else next(rest, "-")
            if value.startswith("-"):
                return None
            found[_ANALYZE_VALUES[name]] = value
        elif arg == "--pretty":
            found["pretty"] = True
        elif arg.startswith("-") or not arg or files:
            return None
        else:
            files.append(arg)
    return _checked_analyze_arguments(files, found)


def _checked_analyze_arguments(files: list[str], found: dict[str, Any]) -> dict[str, Any] | None:
    """None unless Typer would take the values as they are (then the command cannot fail on them)."""
    if len(files) != 1 or not _readable_file(Path(files[0])):
        return None
    if found.get("output", "json") not in ("json", "table"):
        return None
    processes = found.get("processes", "1")
    if not (processes.isascii() and processes.isdigit() and int(processes) >= 1):
        return None
    try:
        date.fromisoformat(found.get("as_of") or "2000-01-01")
    except ValueError:
        return None
    if "processes" in found:
        found["processes"] = int(processes)
    return {"file": Path(files[0]), **found}


def _readable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)
