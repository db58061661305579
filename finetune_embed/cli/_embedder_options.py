"""The options every command that embeds shares for a model the catalog does not know (a compatible server's, a
new one): ``--tokenizer``, ``--max-input-tokens`` and the catalog model behind the name (``--base-model``).

They are what the embedder's unknown-model warning tells the user to set, so that the warning names options the
command has (``cli_words`` rewrites ``tokenizer=`` to ``--tokenizer`` and so on).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .._exceptions import ConfigError

__all__ = ["embedder_model_options", "tokenizer_from_option"]

F = TypeVar("F", bound=Callable[..., Any])

_TOKENIZER_HELP = (
    "How to count tokens for a model the catalog does not know: a tiktoken encoding (cl100k_base, o200k_base), "
    "'chars' (1 token per 3 bytes of UTF-8), or the model's own Hugging Face tokenizer.json (needs the tokenizers "
    "package). Default: the catalog's encoding, else 'chars'."
)
_MAX_INPUT_HELP = "Tokens per input the server accepts (default: the catalog's; 8191 for a model it does not know)."


def embedder_model_options(*, prefix: str = "", base_model: bool = False) -> Callable[[F], F]:
    """``--tokenizer`` and ``--max-input-tokens`` (with ``base_model``, also ``--base-model``: the catalog model
    behind the embedding model's name), each spelled ``--<prefix>...`` where a command's other options are about
    another model (``--embedding-tokenizer``). The parameters are ``tokenizer``, ``max_input_tokens`` and
    ``base_model``, the embedder's own names, so that its messages are rewritten to these options."""

    def decorate(fn: F) -> F:
        fn = click.option(
            f"--{prefix}max-input-tokens", "max_input_tokens", type=click.IntRange(min=1), help=_MAX_INPUT_HELP
        )(fn)
        fn = click.option(f"--{prefix}tokenizer", "tokenizer", metavar="NAME|FILE", help=_TOKENIZER_HELP)(fn)
        if base_model:
            fn = click.option(
                f"--{prefix}base-model",
                "base_model",
                help="The catalog model behind the embedding model's name (Azure deployments, compatible servers).",
            )(fn)
        return fn

    return decorate


def tokenizer_from_option(value: str | None) -> Any:
    """The ``tokenizer=`` argument for a ``--tokenizer`` value: an encoding name or ``chars`` as given, a
    ``tokenizer.json`` file as its tokenizer's ``encode`` (special tokens counted, as servers count them)."""
    if value is None or value in ("chars", "estimate"):
        return value
    path = Path(value)
    if path.suffix.lower() != ".json" and not path.is_file():
        import tiktoken

        known = sorted(tiktoken.list_encoding_names())
        if value not in known:
            raise click.UsageError(
                f"--tokenizer {value!r}: not a tiktoken encoding ({', '.join(known)}), 'chars', or a tokenizer.json "
                "file"
            )
        return value
    if not path.is_file():
        raise click.UsageError(f"--tokenizer {value!r}: no such file")
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ConfigError(
            f"--tokenizer {value}: reading a Hugging Face tokenizer.json needs the tokenizers package: "
            "pip install tokenizers"
        ) from exc
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises plain Exceptions for a bad file
        raise ConfigError(f"--tokenizer {value}: not a Hugging Face tokenizer.json ({exc})") from exc

    def count(text: str) -> int:
        return len(tokenizer.encode(text).ids)

    count.__qualname__ = path.name  # how messages name the counter
    return count
