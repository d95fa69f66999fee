"""Which format an upload is, and a stream that can be read from the start after peeking at it."""

from __future__ import annotations

import contextlib
import io
import json
import mmap
import shutil
import tempfile
from pathlib import PurePath
from typing import IO, Any, BinaryIO

HEAD_BYTES = 64 * 1024
BOM = b"\xef\xbb\xbf"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive
_SPOOL_IN_MEMORY = 32 * 1024 * 1024

_BY_EXTENSION = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".zip": "zip"}
_BY_CONTENT_TYPE = {
    "application/json": "json",
    "text/json": "json",
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/jsonlines": "jsonl",
    "application/json-lines": "jsonl",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/comma-separated-values": "csv",
    "application/zip": "zip",
    "application/x-zip-compressed": "zip",
    "application/x-zip": "zip",
}


def declared_format(filename: str | None, content_type: str | None) -> str | None:
    """The format the uploader claims; the file name wins, as browsers send vague content types."""
    if filename:
        found = _BY_EXTENSION.get(PurePath(filename).suffix.lower())
        if found:
            return found
    if content_type:
        return _BY_CONTENT_TYPE.get(content_type.split(";", 1)[0].strip().lower())
    return None


def detect_format(head: bytes, declared: str | None) -> str:
    """zip by its magic bytes whatever the claim; else the claim; else JSON by its first character,
    JSON Lines when the first line is a whole object followed by another, and CSV otherwise."""
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if declared is not None:
        return "jsonl" if declared == "json" and _looks_like_lines(head) else declared
    text = head.removeprefix(BOM).lstrip()
    if text[:1] in (b"{", b"["):
        return "jsonl" if _looks_like_lines(head) else "json"
    return "csv"


def _looks_like_lines(head: bytes) -> bool:
    text = head.removeprefix(BOM).lstrip()
    first, newline, rest = text.partition(b"\n")
    if not newline or not rest.strip().startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


class _Replay(io.RawIOBase):
    """The bytes already peeked at, then the rest of the source."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class Upload:
    """An upload's bytes: the first ``HEAD_BYTES`` for detection, then a stream from the start."""

    def __init__(self, source: BinaryIO | bytes) -> None:
        self._source: IO[bytes] = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
        self._start = self._source.tell() if self._source.seekable() else None
        self.head = self._source.read(HEAD_BYTES)

    def stream(self, *, skip_bom: bool = False) -> BinaryIO:
        head = self.head.removeprefix(BOM) if skip_bom else self.head
        return io.BufferedReader(_Replay(head, self._source), buffer_size=HEAD_BYTES)

    def whole(self) -> Whole:
        """All of the upload as one buffer, for the fast readers (and for the slow path after them):
        the bytes given, a read-only memory map of the file, or of a temporary copy of a stream with no
        file behind it (a copy made through the stream's own reads, so a metered stream stays metered)."""
        source = self._source
        if isinstance(source, io.BytesIO):
            return Whole(source.getvalue(), self._start or 0)
        if self._start is not None:
            try:
                fileno = source.fileno()
            except (OSError, AttributeError, ValueError):
                fileno = None
            if fileno is not None:
                size = source.seek(0, io.SEEK_END)
                if size > self._start:
                    return Whole(mmap.mmap(fileno, 0, access=mmap.ACCESS_READ), self._start)
                return Whole(b"", 0)
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - kept open by the map; closed with it
        spool.write(self.head)
        shutil.copyfileobj(self._source, spool, 1024 * 1024)
        if spool.tell() == 0:
            spool.close()
            return Whole(b"", 0)
        spool.flush()
        return Whole(mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ), 0, spool)

    def seekable(self) -> IO[bytes]:
        """A seekable file from the start (zip archives keep their directory at the end)."""
        if self._start is not None:
            self._source.seek(self._start)
            return self._source
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by the caller
        spool.write(self.head)
        shutil.copyfileobj(self._source, spool)
        spool.seek(0)
        return spool


class Whole:
    """An upload's bytes from ``start`` on, addressable without copies (``view``, ``find``) and readable
    again as a stream from its first byte (``stream``, for the slow path after a fast reader)."""

    def __init__(
        self, data: bytes | mmap.mmap, start: int = 0, owner: IO[bytes] | None = None, end: int | None = None
    ) -> None:
        self.data = data
        self.start = start
        self.end = len(data) if end is None else end
        self._owner = owner

    def __len__(self) -> int:
        return self.end - self.start

    def view(self, begin: int, end: int) -> memoryview:
        return memoryview(self.data)[begin:end]

    def find(self, sub: bytes, begin: int, end: int) -> int:
        return self.data.find(sub, begin, end)

    def stream(self) -> BinaryIO:
        return io.BufferedReader(_View(memoryview(self.data)[self.start : self.end]), buffer_size=HEAD_BYTES)

    def close(self) -> None:
        if isinstance(self.data, mmap.mmap):
            # a view may still be exported (e.g. by a pending exception): the GC closes the map then
            with contextlib.suppress(BufferError):
                self.data.close()
        if self._owner is not None:
            self._owner.close()


class _View(io.RawIOBase):
    """A seekable read-only stream over a memoryview (no copy of the bytes)."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        chunk = self._view[self._pos : self._pos + len(buffer)]
        n = len(chunk)
        buffer[:n] = chunk
        self._pos += n
        return n

    def close(self) -> None:
        self._view.release()
        super().close()
