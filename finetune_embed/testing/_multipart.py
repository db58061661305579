"""A small ``multipart/form-data`` parser (RFC 7578) for file uploads."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import bad_request

__all__ = ["Part", "parse_multipart"]

_PARAM = re.compile(r';\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))')


@dataclass(frozen=True)
class Part:
    """One form field; ``filename`` is set for file fields."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        """The field as text."""
        return self.data.decode("utf-8", "replace")


def _params(header: str) -> dict[str, str]:
    return {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3).strip())
        for m in _PARAM.finditer(header)
    }


def parse_multipart(content_type_header: str, body: bytes) -> list[Part]:
    """The parts of a multipart body; a 400 when it is not one."""
    if not content_type_header.lower().startswith("multipart/form-data"):
        raise bad_request(
            f"Invalid Content-Type header ({content_type_header or 'none'}), expected multipart/form-data."
        )
    boundary = _params(content_type_header).get("boundary")
    if not boundary:
        raise bad_request("Invalid multipart/form-data request: no boundary.")
    delimiter = b"--" + boundary.encode("latin-1")
    parts: list[Part] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise bad_request("Invalid multipart/form-data request: a part has no headers.")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        params = _params(disposition)
        if "name" not in params:
            raise bad_request("Invalid multipart/form-data request: a part has no name.")
        parts.append(Part(params["name"], data, params.get("filename"), headers.get("content-type")))
    return parts
