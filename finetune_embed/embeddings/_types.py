"""Value objects returned by the embedders: :class:`EmbeddingResult`, :class:`Pieces`, :class:`EmbeddingStats`,
:class:`EmbeddingEstimate`, plus the warning and error for unusable vectors."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .._exceptions import InvalidEmbeddingError

__all__ = [
    "EmbeddingEstimate",
    "EmbeddingResult",
    "EmbeddingStats",
    "InvalidEmbeddingError",
    "InvalidEmbeddingWarning",
    "Pieces",
]


class InvalidEmbeddingWarning(UserWarning):
    """Some vectors came back non-finite or all zero; they are flagged in ``EmbeddingResult.invalid``."""




@dataclass(frozen=True)
class Pieces:
    """Every piece that was embedded (``long_inputs="pieces"``), in input order.

    Row ``j`` is piece ``j``: its vector, the input it belongs to, its span ``text[start:end]`` in that input
    (character offsets) and its token count. An input that was not cut is one piece spanning the whole text;
    empty inputs have none.
    """

    vectors: npt.NDArray[np.float32]
    input_index: npt.NDArray[np.int64]
    start: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    tokens: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.input_index.shape[0])

    def of(self, index: int) -> tuple[npt.NDArray[np.float32], list[tuple[int, int]]]:
        """The vectors and ``(start, end)`` spans of input ``index``'s pieces."""
        rows = np.flatnonzero(self.input_index == index)
        return self.vectors[rows], [(int(self.start[r]), int(self.end[r])) for r in rows]


@dataclass(frozen=True)
class EmbeddingStats:
    """What one call did: texts in, distinct texts, cache hits, API requests, tokens sent, 429s seen, requests
    split, requests that timed out and the tokens they may have billed twice, size errors (413 and the like)."""

    inputs: int = 0
    unique: int = 0
    cached: int = 0
    embedded: int = 0
    requests: int = 0
    tokens: int = 0
    rate_limited: int = 0
    splits: int = 0
    seconds: float = 0.0
    timeouts: int = 0
    rebilled_tokens: int = 0
    size_errors: int = 0


@dataclass(frozen=True)
class EmbeddingResult:
    """The full outcome of :meth:`Embedder.embed_with_info`.

    * ``vectors`` - ``(n, d)`` float32, row ``i`` for input ``i`` (empty inputs: zeros, or NaN under
      ``empty_inputs="nan"``; long inputs under ``"chunk"``/``"pieces"``: the token-weighted mean of their
      pieces, renormalised).
    * ``empty`` - inputs that were empty or whitespace only (never sent).
    * ``invalid`` - inputs whose vector came back non-finite or all zero.
    * ``mask`` - ``~(empty | invalid)``: rows holding a real embedding.
    * ``long`` / ``truncated`` - indices of inputs over the model's token limit, and which were truncated.
    * ``pieces`` - every piece with its offsets (``long_inputs="pieces"`` only).
    """

    vectors: npt.NDArray[np.float32]
    empty: npt.NDArray[np.bool_]
    invalid: npt.NDArray[np.bool_]
    long: list[int] = field(default_factory=list)
    truncated: list[int] = field(default_factory=list)
    pieces: Pieces | None = None
    stats: EmbeddingStats = field(default_factory=EmbeddingStats)

    @property
    def mask(self) -> npt.NDArray[np.bool_]:
        """True where row ``i`` is a real embedding of input ``i``."""
        return ~(self.empty | self.invalid)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dimensions(self) -> int:
        """The vector size."""
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0


@dataclass(frozen=True)
class EmbeddingEstimate:
    """A dry run (:meth:`Embedder.estimate`): nothing is sent.

    * ``inputs``, ``empty``, ``long``: counts of the inputs given, of the empty ones and of those over the
      per-input token limit (under the embedder's policies).
    * ``unique``: distinct strings to embed (after de-duplication and cutting); ``cached``: of those, already
      in the cache.
    * ``tokens``, ``requests``: what would be sent (exact tokens in the model's encoding; requests as packed,
      ≤ 2048 inputs and ≤ 300,000 tokens each).
    * ``cost_standard``, ``cost_batch``: USD at the catalog's price per 1M tokens (``None`` if the price is
      unknown), synchronous and Batch API.
    * ``min_seconds``: the shortest time the given ``rpm``/``tpm`` allow (budgets assumed full at the start,
      refilling evenly as OpenAI's do); ``None`` when no limit is known.
    """

    model: str
    dimensions: int | None
    inputs: int
    empty: int
    long: int
    unique: int
    cached: int
    tokens: int
    requests: int
    cost_standard: float | None
    cost_batch: float | None
    min_seconds: float | None
    price_as_of: str | None = None

    def __str__(self) -> str:
        def usd(x: float | None) -> str:
            return "unknown" if x is None else f"${x:,.4f}"

        eta = "no limit given" if self.min_seconds is None else f"{self.min_seconds:,.1f} s"
        return (
            f"{self.inputs:,} inputs ({self.empty:,} empty, {self.long:,} over the token limit) -> "
            f"{self.unique:,} distinct texts, {self.cached:,} cached; would send {self.tokens:,} tokens in "
            f"{self.requests:,} requests; cost {usd(self.cost_standard)} (Batch API {usd(self.cost_batch)}); "
            f"at least {eta}"
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return dict(self.__dict__)
