"""An upload's bytes as the request delivers them, without spooling: the raw body, or the ``file`` field
of a multipart form, parsed as it streams (python-multipart's push parser), so the file goes on to the
data bucket chunk by chunk however large it is. Both are the ``UploadBody`` of ``ReceiveUpload``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from spendsense_shared.http.errors import ApiError

FILE_FIELD = "file"
MAX_PART_HEADER_BYTES = 8 * 1024


class _Disconnected(ApiError):
    def __init__(self) -> None:
        super().__init__(400, "client_disconnected", "the client went away before the upload was complete")


async def _stream(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect as exc:
        raise _Disconnected from exc


class RequestBody:
    """The request body is the upload."""

    def __init__(self, request: Request, content_type: str | None):
        self.request = request
        self.filename: str | None = None
        self.content_type = content_type

    def chunks(self) -> AsyncIterator[bytes]:
        return _stream(self.request)


class MultipartFile:
    """The ``file`` field of a ``multipart/form-data`` body; other fields are skipped."""

    def __init__(self, request: Request, boundary: bytes):
        self.request = request
        self.boundary = boundary
        self.filename: str | None = None
        self.content_type: str | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        out: list[bytes] = []
        state = {"in_file": False, "seen_file": False, "done": False}
        field, value = bytearray(), bytearray()
        headers: dict[bytes, bytes] = {}

        def on_part_begin() -> None:
            headers.clear()

        def on_header_field(data: bytes, start: int, end: int) -> None:
            field.extend(data[start:end])

        def on_header_value(data: bytes, start: int, end: int) -> None:
            value.extend(data[start:end])
            if len(value) > MAX_PART_HEADER_BYTES:
                raise ApiError(422, "validation_error", "file: a form part's header is too long")

        def on_header_end() -> None:
            headers[bytes(field).strip().lower()] = bytes(value).strip()
            field.clear()
            value.clear()

        def on_headers_finished() -> None:
            _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
            name = disposition.get(b"name", b"").decode("utf-8", "replace")
            state["in_file"] = name == FILE_FIELD and not state["seen_file"] and not state["done"]
            if state["in_file"]:
                state["seen_file"] = True
                filename = disposition.get(b"filename")
                self.filename = filename.decode("utf-8", "replace")[:256] if filename else None
                part_type = headers.get(b"content-type")
                self.content_type = part_type.decode("latin-1")[:256] if part_type else None

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if state["in_file"]:
                out.append(data[start:end])

        def on_part_end() -> None:
            if state["in_file"]:
                state["in_file"], state["done"] = False, True

        parser = MultipartParser(
            self.boundary,
            {
                "on_part_begin": on_part_begin,
                "on_header_field": on_header_field,
                "on_header_value": on_header_value,
                "on_header_end": on_header_end,
                "on_headers_finished": on_headers_finished,
                "on_part_data": on_part_data,
                "on_part_end": on_part_end,
            },
        )
        async for chunk in _stream(self.request):
            try:
                parser.write(chunk)
            except ApiError:
                raise
            except Exception as exc:  # python-multipart's MultipartParseError and friends
                raise ApiError(400, "malformed_multipart", f"the multipart body is malformed: {exc}") from exc
            if out:
                data = b"".join(out)
                out.clear()
                yield data
        parser.finalize()
        if not state["done"]:
            raise ApiError(
                422, "validation_error", f"{FILE_FIELD}: a multipart field named 'file' is required"
            )
