"""Image parts: data-URL parsing, the real format from the magic bytes, pixel size, and a token estimate."""

from __future__ import annotations

import binascii
import math
import re
import struct
from dataclasses import dataclass

__all__ = [
    "MAX_IMAGES_PER_EXAMPLE",
    "MAX_IMAGE_BYTES",
    "SUPPORTED_MIME",
    "ImageInfo",
    "image_tokens",
    "inspect_image_url",
]

MAX_IMAGE_BYTES = 10_000_000  # "Each image can be at most 10 MB" (vision fine-tuning guide)
MAX_IMAGES_PER_EXAMPLE = 10  # "Each example can have at most 10 images" (OpenAI; Azure allows 64)
SUPPORTED_MIME = frozenset({"image/jpeg", "image/png", "image/webp"})
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_DATA_URL = re.compile(r"data:([^;,]*)((?:;[^;,]*)*),", re.IGNORECASE)


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`inspect_image_url` found. ``problem`` is ``(code, text)`` when the image is unusable."""

    kind: str  # "data" | "http" | "invalid"
    declared_mime: str | None = None
    actual_mime: str | None = None
    n_bytes: int | None = None
    width: int | None = None
    height: int | None = None


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:2] == b"BM":
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.lstrip()[:5].lower() in (b"<svg ", b"<?xml"):
        return "image/svg+xml"
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    n = len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def _dimensions(mime: str | None, data: bytes) -> tuple[int, int] | None:
    try:
        if mime == "image/png" and len(data) >= 24:
            w, h = struct.unpack(">II", data[16:24])
            return w, h
        if mime == "image/gif" and len(data) >= 10:
            w, h = struct.unpack("<HH", data[6:10])
            return w, h
        if mime == "image/jpeg":
            return _jpeg_size(data)
        if mime == "image/webp" and len(data) >= 30:
            chunk = data[12:16]
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if chunk == b"VP8L":
                b = data[21:25]
                w = 1 + (((b[1] & 0x3F) << 8) | b[0])
                h = 1 + (((b[3] & 0x0F) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
                return w, h
            if chunk == b"VP8X":
                w = 1 + int.from_bytes(data[24:27], "little")
                h = 1 + int.from_bytes(data[27:30], "little")
                return w, h
    except (struct.error, IndexError):
        return None
    return None


def inspect_image_url(url: str, *, max_bytes: int = MAX_IMAGE_BYTES) -> tuple[ImageInfo, list[tuple[str, str]]]:
    """Check an ``image_url.url``. Returns the facts and a list of ``(code, text)`` problems (errors first)."""
    low = url[:8].lower()
    if low.startswith(("http://", "https://")):
        return ImageInfo("http"), []
    if not low.startswith("data:"):
        return ImageInfo("invalid"), [
            (
                "invalid_image",
                f"image_url.url must be an https:// URL or a data:image/...;base64,... URL, not {url[:40]!r}",
            )
        ]
    m = _DATA_URL.match(url)
    if m is None:
        return ImageInfo("invalid"), [("invalid_image", "the data URL has no ',' before its data")]
    declared = m.group(1).strip().lower() or None
    declared = _ALIASES.get(declared or "", declared)
    params = [p.strip().lower() for p in m.group(2).split(";") if p.strip()]
    if "base64" not in params:
        return ImageInfo("invalid", declared), [
            ("invalid_image", "the data URL is not base64-encoded: write data:image/png;base64,<data>")
        ]
    payload = url[m.end() :]
    stripped = payload.rstrip("=")
    n_bytes = (len(stripped) * 3) // 4
    problems: list[tuple[str, str]] = []
    if n_bytes > max_bytes:
        problems.append(
            ("image_too_large", f"the image is {n_bytes / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
        )
        head_b64 = payload[:64]
        try:
            data = binascii.a2b_base64(head_b64[: len(head_b64) // 4 * 4])
        except binascii.Error:
            data = b""
    else:
        try:
            data = binascii.a2b_base64(payload, strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            return ImageInfo("invalid", declared, n_bytes=n_bytes), [
                ("invalid_image", f"the data URL's base64 data is invalid ({exc})")
            ]
        n_bytes = len(data)
        if not data:
            return ImageInfo("invalid", declared, n_bytes=0), [("invalid_image", "the data URL holds no data")]
    actual = _sniff(data[:32])
    dims = _dimensions(actual, data)
    info = ImageInfo("data", declared, actual, n_bytes, dims[0] if dims else None, dims[1] if dims else None)
    if declared is not None and not declared.startswith("image/"):
        problems.append(("invalid_image", f"the data URL's media type is {declared!r}, not an image type"))
    elif actual is not None and actual not in SUPPORTED_MIME:
        problems.append(
            ("unsupported_image_format", f"the image is {actual}; fine-tuning accepts JPEG, PNG and WEBP only")
        )
    elif actual is None and declared not in SUPPORTED_MIME:
        problems.append(
            (
                "unsupported_image_format",
                f"the data URL declares {declared or 'no media type'} and its bytes are not JPEG, PNG or WEBP",
            )
        )
    elif actual is None:
        problems.append(("invalid_image", f"the data is not a readable image (declared {declared})"))
    elif declared is not None and declared != actual:
        problems.append(
            ("image_format_mismatch", f"the data URL says {declared} but the bytes are {actual}: write data:{actual}")
        )
    return info, problems


# (base tokens, tokens per 512px tile) by model family; the service's vision pricing (approximate)
_IMAGE_TOKEN_RATES: tuple[tuple[str, int, int], ...] = (
    ("gpt-4o-mini", 2833, 5667),
    ("gpt-4o", 85, 170),
    ("gpt-4.1", 85, 170),
)


def image_tokens(model: str | None, width: int | None, height: int | None, detail: str | None) -> int:
    """Estimated input tokens of one image (tiles of 512 px after fitting 2048 px and a 768 px short side).

    An image of unknown size counts as 1024x1024. This is an estimate: the service does not document the
    tokens images add to a training example.
    """
    base, per_tile = 85, 170
    name = model or ""
    for prefix, b, t in _IMAGE_TOKEN_RATES:
        if name.startswith(prefix):
            base, per_tile = b, t
            break
    if detail == "low":
        return base
    w: float = width or 1024
    h: float = height or 1024
    if w <= 0 or h <= 0:
        return base
    scale = min(1.0, 2048 / max(w, h))
    w, h = w * scale, h * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return base + per_tile * tiles
