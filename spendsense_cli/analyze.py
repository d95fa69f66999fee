"""``spendsense analyze``: parse a file the way an upload is parsed (the profile service's parser), then
analyze it with the features service's code and packaged rule set. The two services never import each
other; this offline command is where they are composed.

Both cores, from the first byte: a ``{"users": [...]}`` document or a JSON Lines file is cut at user
boundaries into one piece per process, and each process (this one and forked copies of it, which inherit
its imports) reads, parses and analyzes its own piece; the reports are then merged by user id. A piece
parses as its users do within the whole file but for the checks across users (a user id or a transaction
id given twice), which are made here over every piece's ids. Anything else — a piece the fast reader does
not take (a problem, a Plaid body, a cut that was no user boundary after all), an id in two pieces, an
upload of another shape — and the file is parsed whole, once, so that the result and every problem are
exactly those of an upload.
"""

from __future__ import annotations

import mmap
import os
import pickle
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from heapq import merge
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spendsense_features.domain.analysis import analyze, analyze_json, encoded_reports, joined_reports
from spendsense_features.domain.rules import RuleSet, load_rule_set
from spendsense_profile.domain.ingest import ParsedUpload, parse_file, parse_span
from spendsense_profile.domain.ingest.detect import BOM, HEAD_BYTES, declared_format, detect_format
from spendsense_profile.domain.ingest.finalize import same_length_hashes

PARALLEL_FROM_BYTES = 16 * 1024 * 1024  # smaller files are analyzed in one process (forking costs more)
SCAN_BYTES = 4 * 1024 * 1024  # how far past each even cut a user boundary is looked for
_DOCUMENT_HEAD = re.compile(rb'\s*\{\s*"users"\s*:\s*\[')
# The end of a user object and the start of the next, by the keys only a user object has (a comma between
# two objects may also be inside a user's lists; a cut there is caught when its piece is parsed).
_BETWEEN_USERS = re.compile(rb'\}\s*,\s*\{\s*"(?:user_id|accounts|transactions|liabilities)"\s*:')
_PIECE_HEAD = b'{"users":['  # what a piece of a document (but the first) is given in front
_PIECE_TAIL = b"]}"  # and behind (but the last)


def analyze_file(path: Path, as_of: date | None = None) -> list[dict[str, Any]]:
    """The reports of a file, as Python values (one process). Raises ValueError listing every problem."""
    parsed = parse_file(path)
    if not parsed.ok:
        raise ValueError("\n".join(str(p) for p in parsed.problems))
    return analyze(parsed.tables, load_rule_set(), as_of=as_of)


def analyze_file_json(
    path: Path,
    as_of: date | None = None,
    *,
    processes: int = 1,
    pretty: bool = False,
    today: date | None = None,
) -> bytes:
    """:func:`analyze_file` as one JSON array (``orjson``; indented with ``pretty``), the work shared out
    between ``processes`` processes (see the module docstring): the same bytes whatever ``processes``.
    ``today`` bounds dates as in ``parse_upload`` (UTC today by default). Raises ValueError listing every
    problem."""
    today = today or datetime.now(UTC).date()
    rule_set = load_rule_set()
    size = path.stat().st_size
    if processes > 1 and size >= PARALLEL_FROM_BYTES and hasattr(os, "fork"):
        pieces = cut(path, processes)
        if pieces is not None:
            reports = _in_pieces(path, pieces, rule_set, today, as_of)
            if reports is not None:
                return joined_reports(reports, pretty=pretty)
    parsed = parse_file(path, today=today)
    if not parsed.ok:
        raise ValueError("\n".join(str(p) for p in parsed.problems))
    processes = processes if size >= PARALLEL_FROM_BYTES else 1
    return analyze_json(parsed.tables, rule_set, as_of=as_of, processes=processes, pretty=pretty)


# -- pieces -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """Bytes ``start:stop`` of the file with ``head`` before them and ``tail`` after: an upload of its own,
    in ``fmt`` ("json" or "jsonl")."""

    start: int
    stop: int
    fmt: str
    head: bytes = b""
    tail: bytes = b""

    def parse(self, data: mmap.mmap, today: date) -> ParsedUpload:
        """The piece parsed by the fast reader: in place in the file's map when it is a plain part of the
        file (JSON Lines), else from a copy with its head and tail."""
        if not self.head and not self.tail:
            return parse_span(data, self.start, self.stop, self.fmt, today=today)
        view = memoryview(data)
        try:
            copy = b"".join([self.head, view[self.start : self.stop], self.tail])
        finally:
            view.release()
        return parse_span(copy, 0, len(copy), self.fmt, today=today)


def cut(path: Path, parts: int) -> list[Piece] | None:
    """``path`` in ``parts`` pieces of about the same size at user boundaries, or None when it is not a
    plain ``users`` document or JSON Lines (as the parser detects the format) or has no boundary near a
    cut. The boundaries are found by a byte scan: never inside a string (there every quote is escaped),
    but a list inside a user may hold objects that begin as a user does; a piece cut there is no upload
    of whole users, the fast reader rejects it, and the file is parsed whole."""
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
        fmt = detect_format(head, declared_format(path.name, None))
        if fmt not in ("json", "jsonl"):
            return None
        size = file.seek(0, 2)
        file.seek(0)
        if size == 0:
            return None
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return cut_bytes(data, fmt, parts)


def cut_bytes(data: bytes | mmap.mmap, fmt: str, parts: int) -> list[Piece] | None:
    """:func:`cut` over an upload's bytes of format ``fmt`` ("json" or "jsonl")."""
    if fmt == "jsonl":
        return _cut_lines(data, parts)
    start = len(BOM) if data[: len(BOM)] == BOM else 0
    opening = _DOCUMENT_HEAD.match(data, start)
    if fmt != "json" or opening is None:
        return None
    size, pieces = len(data), []
    begin, head = 0, b""
    for k in range(1, parts):
        at = max(begin, opening.end(), size * k // parts)
        found = _BETWEEN_USERS.search(data, at, at + SCAN_BYTES)
        if found is None:
            return None
        pieces.append(Piece(begin, found.start() + 1, "json", head, _PIECE_TAIL))
        begin, head = data.find(b"{", found.start() + 1), _PIECE_HEAD
    return [*pieces, Piece(begin, size, "json", head)]


def _cut_lines(data: bytes | mmap.mmap, parts: int) -> list[Piece] | None:
    size, pieces = len(data), []
    begin = 0
    for k in range(1, parts):
        at = max(begin, size * k // parts)
        newline = data.find(b"\n", at, at + SCAN_BYTES)
        if newline < 0 or newline + 1 >= size:
            return None
        pieces.append(Piece(begin, newline + 1, "jsonl"))
        begin = newline + 1
    return [*pieces, Piece(begin, size, "jsonl")]


# -- the pieces, in parallel --------------------------------------------------------------------------------


@dataclass
class _Analyzed:
    """What one piece hands back: its users' ids and transaction ids (for the checks across pieces: the ids
    sorted as 64-bit hashes when they are all of one length) and its reports, each encoded apart."""

    user_ids: list[str]
    transaction_ids: pa.ChunkedArray
    id_hashes: np.ndarray | None
    reports: list[tuple[str, bytes]]


def _in_pieces(
    path: Path, pieces: list[Piece], rule_set: RuleSet, today: date, as_of: date | None
) -> list[tuple[str, bytes]] | None:
    """The merged reports of every piece, each piece in its own process (this one takes the first); None
    when a piece was rejected or the pieces share a user or a transaction (the caller parses whole)."""
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        work = [lambda p=p: _analyze(data, p, rule_set, today, as_of) for p in pieces]
        children = [_Child.fork(w) for w in work[1:]]
        analyzed = [work[0]()] + [child.result() for child in children]
    done = [a for a in analyzed if a is not None]
    if len(done) < len(pieces) or not _disjoint(done):
        return None
    return list(merge(*(a.reports for a in done), key=lambda item: item[0]))


def _analyze(
    data: mmap.mmap, piece: Piece, rule_set: RuleSet, today: date, as_of: date | None
) -> _Analyzed | None:
    try:
        parsed = piece.parse(data, today)
    except Exception:  # what the fast reader did not foresee: the file is read whole, as an upload is
        return None
    if not parsed.ok:
        return None
    reports = encoded_reports(parsed.tables, rule_set, as_of=as_of)
    ids = parsed.tables["transactions"]["transaction_id"]
    hashes = same_length_hashes(ids)
    if hashes is not None:
        hashes.sort()
    return _Analyzed(parsed.user_ids, ids, hashes, reports)


class _Child:
    """A forked copy of this process that runs one function and sends back its pickled result. Plain
    ``os.fork`` and a pipe: a process pool's start (its imports, queues and management thread) costs
    more than it brings to one call per process. A child that fails answers None."""

    def __init__(self, pid: int, pipe: int) -> None:
        self._pid = pid
        self._pipe = pipe

    @classmethod
    def fork(cls, work: Callable[[], Any]) -> _Child:
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():  # forking a process that has (idle) Arrow threads: the child
            warnings.simplefilter("ignore", DeprecationWarning)  # restarts Arrow's pools and runs no others
            pid = os.fork()
        if pid == 0:  # the child: never returns, and never runs the parent's exit handlers
            os.close(read_end)
            status = 1
            try:
                with os.fdopen(write_end, "wb") as out:
                    pickle.dump(work(), out, protocol=pickle.HIGHEST_PROTOCOL)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        return cls(pid, read_end)

    def result(self) -> Any:
        with os.fdopen(self._pipe, "rb") as answer:
            body = answer.read()
        _, status = os.waitpid(self._pid, 0)
        return pickle.loads(body) if status == 0 and body else None  # noqa: S301 - our own child's answer


def _disjoint(analyzed: list[_Analyzed]) -> bool:
    """No user id and no transaction id in two pieces (each piece's own were checked by its parse)."""
    users = [u for a in analyzed for u in a.user_ids]
    if len(set(users)) < len(users):
        return False
    hashes = [a.id_hashes for a in analyzed]
    if all(h is not None for h in hashes):
        # two equal hashes: the same id, or (about once in 10^8 files) two ids alike by chance, which the
        # whole file's parse then tells apart
        return not _any_shared(hashes)  # type: ignore[arg-type]
    seen = analyzed[0].transaction_ids
    for later in analyzed[1:]:
        # a set of one piece's ids probed with the other's: half the work of a set of all of them
        if pc.any(pc.is_in(later.transaction_ids, value_set=seen.combine_chunks())).as_py():
            return False
        seen = pa.chunked_array(seen.chunks + later.transaction_ids.chunks, seen.type)
    return True


def _any_shared(sorted_hashes: list[np.ndarray]) -> bool:
    """Whether a value is in two of the sorted arrays (each holds every value once)."""
    seen = sorted_hashes[0]
    for later in sorted_hashes[1:]:
        if len(seen) and len(later):
            at = np.minimum(np.searchsorted(seen, later), len(seen) - 1)
            if np.any(seen[at] == later):
                return True
        seen = np.sort(np.concatenate([seen, later]))
    return False
