"""The archive upload's multipart body, read as it streams in. Its file part goes straight
into the upload store, hashed and counted on the way (`starter.uploads.IncomingUpload`): an
upload is written once, in the place it stays, and one over the limit is refused as soon as
it passes it. Its other parts are small text fields, checked as FastAPI checks a form."""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from slipway.layout import Layout
from starter.http.fields import ENV_PAIR, Commit, EnvPair, PreviewName, ProjectName
from starter.http.limits import too_large
from starter.uploads import IncomingUpload, UploadTooLargeError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FILE_FIELD = "file"
"""The part that carries the archive."""

FIELD_BYTES = 1 << 20
"""The largest text field: a form's fields are names and NAME=VALUE pairs."""

FLUSH_BYTES = 1 << 20
"""Bytes of the archive gathered before they are written: one thread hop per MiB."""


class ArchiveFields(BaseModel):
    """What an archive upload says besides its file."""

    project: ProjectName = Field(description="Project name, a DNS label.")
    env: list[EnvPair] = Field(
        default_factory=list,
        description=f"NAME=VALUE (pattern {ENV_PAIR}) for an app's container, repeatable; "
        "the values are sealed at once.",
    )
    commit: Commit | None = Field(None, description="Source commit, recorded.")
    preview: PreviewName | None = Field(
        None,
        description="Deploy the project's preview of this name instead, at "
        "<preview>--<project>; production is not touched.",
    )


def form_schema() -> dict[str, Any]:
    """The multipart body's JSON Schema, for OpenAPI: the fields and the file."""
    schema = ArchiveFields.model_json_schema()
    schema["title"] = "ArchiveUpload"
    schema["properties"] = {
        FILE_FIELD: {
            "type": "string",
            "contentMediaType": "application/octet-stream",
            "description": "The site or app as a .tar.gz, .tgz, .tar or .zip archive.",
        },
        **schema["properties"],
    }
    schema["required"] = [FILE_FIELD, *schema.get("required", [])]
    return schema


@dataclass
class _Part:
    name: str = ""
    archive: bool = False
    data: bytearray = field(default_factory=bytearray)


@dataclass
class ArchiveForm:
    """One upload request's body as it arrives: its text fields, and its archive's name and
    bytes in the store (not yet kept: `keep` names it by its digest, `discard` drops it)."""

    layout: Layout
    limit: int
    fields: list[tuple[str, str]] = field(default_factory=list)
    filename: str | None = None
    upload: IncomingUpload | None = None
    _part: _Part = field(default_factory=_Part)
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    _header: bytes = b""
    _value: bytes = b""
    _pending: bytearray = field(default_factory=bytearray)

    async def read(self, request: Request) -> None:
        """Take in the whole body: a multipart one part by part, the archive written as it
        comes; any other (a URL-encoded form) through Starlette, which holds no file."""
        media, options = parse_options_header(request.headers.get("content-type", ""))
        if media != b"multipart/form-data":
            form = await request.form()
            self.fields = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
            return
        boundary = options.get(b"boundary")
        if not boundary:
            raise HTTPException(400, "the multipart body names no boundary")
        parser = MultipartParser(boundary, self._callbacks())
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                await self._flush(FLUSH_BYTES)
            parser.finalize()
            await self._flush(0)
        except FormParserError:
            raise HTTPException(400, "the multipart body cannot be read") from None
        except UploadTooLargeError:
            raise HTTPException(413, too_large(self.limit)) from None

    def checked(self) -> ArchiveFields:
        """The fields, or every problem with them (and a missing file) as FastAPI words a
        form's: an empty value is no value, a repeated field's last value counts."""
        given: dict[str, str | list[str]] = {}
        env: list[str] = []
        for name, value in self.fields:
            if name == "env":
                env.append(value)
            elif value:
                given[name] = value
        if env:
            given["env"] = env
        errors: list[Mapping[str, object]] = []
        fields = None
        try:
            fields = ArchiveFields.model_validate(given)
        except ValidationError as err:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in err.errors()]
        if self.filename is None:
            errors.append({"type": "missing", "loc": ("body", FILE_FIELD), "msg": "Field required"})
        if fields is None or errors:
            raise RequestValidationError(errors)
        return fields

    async def keep(self) -> str:
        """Put the archive in the store; return its upload id."""
        if self.upload is None:
            raise HTTPException(422, f"{FILE_FIELD}: Field required")
        return await asyncio.to_thread(self.upload.keep)

    async def discard(self) -> None:
        """Drop the archive's bytes unless they were kept."""
        if self.upload is not None:
            await asyncio.to_thread(self.upload.discard)

    async def _flush(self, at_least: int) -> None:
        if self.filename is not None and self.upload is None:
            self.upload = await asyncio.to_thread(IncomingUpload, self.layout, self.limit)
        if self.upload is None or len(self._pending) < max(at_least, 1):
            return
        data = bytes(self._pending)
        self._pending.clear()
        await asyncio.to_thread(self.upload.write, data)

    def _callbacks(self) -> "MultipartCallbacks":
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._part = _Part()
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header.lower()] = self._value
        self._header = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise HTTPException(400, "a multipart part has no name in its Content-Disposition")
        self._part.name = name.decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            return
        if self._part.name != FILE_FIELD:
            raise HTTPException(422, f"{self._part.name}: a text field, not a file")
        if self.filename is not None:
            raise HTTPException(422, f"{FILE_FIELD}: one archive per request")
        self.filename = filename.decode("utf-8", "replace")
        self._part.archive = True

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part.archive:
            self._pending += data[start:end]
            return
        self._part.data += data[start:end]
        if len(self._part.data) > FIELD_BYTES:
            raise HTTPException(422, f"{self._part.name}: longer than {FIELD_BYTES} bytes")

    def _end(self) -> None:
        if not self._part.archive:
            self.fields.append((self._part.name, self._part.data.decode("utf-8", "replace")))
