"""Token counting with the right tiktoken encoding for each model.

o200k_base for the gpt-4o, gpt-4.1, gpt-5 and o-series families; cl100k_base for the embedding models and
gpt-3.5 (the catalog says which). Encodings are loaded once per process and cached. tiktoken downloads its
BPE files on first use; offline, point ``TIKTOKEN_CACHE_DIR`` at a folder holding them, or loading raises
:class:`~finetune_embed.TokenizerUnavailableError` saying which file is missing.

>>> tok = Tokenizer.for_model("gpt-4o-mini")
>>> tok.encoding_name
'o200k_base'
>>> tok.count("hello world")
2
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._exceptions import InvalidArgumentError, TokenizerUnavailableError

if TYPE_CHECKING:
    import tiktoken

__all__ = ["Tokenizer", "encoding_name_for_model", "get_encoding"]

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_FILES = {
    "o200k_base": "o200k_base",
    "o200k_harmony": "o200k_base",
    "cl100k_base": "cl100k_base",
    "p50k_base": "p50k_base",
    "p50k_edit": "p50k_base",
    "r50k_base": "r50k_base",
}
# families by prefix, longest first; the catalog's own entries are consulted before these
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("text-embedding-", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("davinci-002", "cl100k_base"),
    ("babbage-002", "cl100k_base"),
)
DEFAULT_ENCODING = "o200k_base"

_lock = threading.Lock()
_cache: dict[str, tiktoken.Encoding] = {}


def encoding_name_for_model(model: str) -> str:
    """The tiktoken encoding ``model`` uses (``o200k_base`` when the model is unknown)."""
    from .catalog import default_catalog

    cat = default_catalog()
    base = cat.base_model_name(model)
    emb = cat.find_embedding_model(base)
    if emb is not None:
        return emb.encoding
    ft = cat.find_fine_tune_model(base)
    if ft is not None:
        return ft.encoding
    for prefix, name in _PREFIXES:
        if base.startswith(prefix):
            return name
    return DEFAULT_ENCODING


def _unavailable(name: str, exc: BaseException) -> TokenizerUnavailableError:
    url = _BLOB.format(_FILES.get(name, name))
    cache_file = hashlib.sha1(url.encode()).hexdigest()
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    where = f"TIKTOKEN_CACHE_DIR is {cache_dir!r}" if cache_dir else "TIKTOKEN_CACHE_DIR is not set"
    return TokenizerUnavailableError(
        f"Could not load the tiktoken encoding {name!r} ({type(exc).__name__}: {exc}). It needs the file {url}, "
        f"which tiktoken caches as {cache_file!r}; {where}. Offline, set TIKTOKEN_CACHE_DIR to a folder holding "
        f"that file (`finetune-embed tokenizer download --dir D` on a connected machine fetches it; copy D over).",
        encoding=name,
    )


def get_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken encoding called ``name``, loaded once per process."""
    with _lock:
        enc = _cache.get(name)
        if enc is not None:
            return enc
        try:
            import tiktoken
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise _unavailable(name, exc) from exc
        try:
            enc = tiktoken.get_encoding(name)
        except ValueError as exc:
            if "Unknown encoding" in str(exc):
                raise TokenizerUnavailableError(
                    f"Unknown tiktoken encoding {name!r}; known: {', '.join(sorted(_FILES))}.", encoding=name
                ) from exc
            raise _unavailable(name, exc) from exc
        except Exception as exc:  # requests.ConnectionError, OSError, hash mismatch, ...
            raise _unavailable(name, exc) from exc
        _cache[name] = enc
        return enc


def _check_text(text: object, name: str) -> None:
    if not isinstance(text, str):
        raise InvalidArgumentError(f"{name} must be a string, not {type(text).__name__}", argument=name)


class Tokenizer:
    """Counts and encodes text with one tiktoken encoding.

    Special-token text such as ``<|endoftext|>`` is treated as plain text, as the API does for user input.
    """

    def __init__(self, encoding_name: str = DEFAULT_ENCODING) -> None:
        self.encoding_name = encoding_name
        self._enc: tiktoken.Encoding | None = None

    @classmethod
    def for_model(cls, model: str) -> Tokenizer:
        """The tokenizer of ``model`` (see :func:`encoding_name_for_model`)."""
        return cls(encoding_name_for_model(model))

    def __repr__(self) -> str:
        return f"Tokenizer({self.encoding_name!r})"

    @property
    def encoding(self) -> tiktoken.Encoding:
        """The underlying ``tiktoken.Encoding`` (loaded on first use)."""
        if self._enc is None:
            self._enc = get_encoding(self.encoding_name)
        return self._enc

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        _check_text(text, "text")
        return self.encoding.encode_ordinary(text)

    def encode_batch(self, texts: Sequence[str], *, num_threads: int = 4) -> list[list[int]]:
        """Token ids of many texts at once (tiktoken's threaded batch encoder)."""
        if isinstance(texts, str):
            raise InvalidArgumentError("texts must be a list of strings, not a string; use encode()", argument="texts")
        items = list(texts)
        for i, text in enumerate(items):
            _check_text(text, f"texts[{i}]")
        return self.encoding.encode_ordinary_batch(items, num_threads=num_threads)

    def decode(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens``."""
        return self.encoding.decode(list(tokens))

    def count(self, text: str) -> int:
        """Number of tokens in ``text``."""
        _check_text(text, "text")
        return len(self.encoding.encode_ordinary(text))

    def count_batch(self, texts: Sequence[str], *, num_threads: int = 4) -> list[int]:
        """Number of tokens in each text."""
        return [len(t) for t in self.encode_batch(texts, num_threads=num_threads)]

    def special_tokens_in(self, text: str) -> list[str]:
        """The reserved special tokens (e.g. ``<|endoftext|>``) that appear verbatim in ``text``."""
        return [tok for tok in self.encoding.special_tokens_set if tok in text]
