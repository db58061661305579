"""Ids that go into a URL path: checked before anything is sent.

A file, job, batch, checkpoint or model id (``ft:gpt-4o-mini-2024-07-18:org:suffix:abc123`` too) and an Azure
deployment name become one segment of a request's path (``DELETE /v1/models/{model}``). An id with a ``/``,
``..``, ``?``, ``#``, ``%``, whitespace or a control character could address another resource
(``delete_model("../files/file-abc")``), so :func:`check_path_id` refuses anything outside the characters ids
are made of, with an :class:`~finetune_embed.InvalidArgumentError` naming the argument, and nothing is sent.

Every character allowed here is one RFC 3986 allows inside a path segment (``:`` and ``@`` included), so the
segment the SDK builds (it percent-quotes each one) is the id itself, byte for byte.
"""

from __future__ import annotations

import re
from typing import Any

from ._exceptions import InvalidArgumentError

__all__ = ["MAX_ID_CHARS", "check_deployment", "check_path_id"]

#: The longest id accepted (OpenAI's ids are under 100 characters; fine-tuned model names under 200).
MAX_ID_CHARS = 256

_ALLOWED = re.compile(r"[A-Za-z0-9._:@+=~-]+")
_BAD_CHAR = re.compile(r"[^A-Za-z0-9._:@+=~-]")
_NAMED = {"/": "a '/'", "\\": "a '\\'", "?": "a '?'", "#": "a '#'", "%": "a '%'"}


def _why_refused(value: str) -> str | None:
    """Why ``value`` cannot be a path segment, or ``None`` when it can."""
    if not value:
        return "it is empty"
    if len(value) > MAX_ID_CHARS:
        return f"it is {len(value)} characters long (ids are at most {MAX_ID_CHARS})"
    if ".." in value:
        return "it contains '..'"
    if value == ".":
        return "it is '.'"
    if _ALLOWED.fullmatch(value):
        return None
    bad = _BAD_CHAR.search(value)
    assert bad is not None
    char = bad.group()
    if char in _NAMED:
        return f"it contains {_NAMED[char]}"
    if char.isspace():
        return "it contains whitespace"
    return f"it contains {char!r} (ids use letters, digits and . _ : @ + = ~ -)"


def check_path_id(value: Any, *, argument: str, example: str = "file-abc123") -> str:
    """``value`` when it is a string that can be sent as one URL path segment; else
    :class:`~finetune_embed.InvalidArgumentError` naming ``argument`` (nothing is sent).

    >>> check_path_id("ft:gpt-4o-mini-2024-07-18:my-org:support:AbC123", argument="model_id")
    'ft:gpt-4o-mini-2024-07-18:my-org:support:AbC123'
    >>> check_path_id("../files/file-abc", argument="model_id")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    finetune_embed._exceptions.InvalidArgumentError: model_id '../files/file-abc' is not an id: it contains '..'. ...
    """
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"{argument} must be a string id (such as {example!r}), got {type(value).__name__}; nothing was sent.",
            argument=argument,
        )
    why = _why_refused(value)
    if why is not None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidArgumentError(
            f"{argument} {shown!r} is not an id: {why}. Nothing was sent. Pass the id exactly as the API returned "
            f"it (such as {example!r}).",
            argument=argument,
        )
    return value


def check_deployment(client: Any, model: Any, *, argument: str = "model") -> None:
    """On an Azure client, where ``model`` names a deployment and goes into the URL path
    (``/openai/deployments/{model}/...``), check it as :func:`check_path_id` does; elsewhere the model travels in
    the request body and any name the server knows is fine (``BAAI/bge-small-en-v1.5`` on a compatible server)."""
    if getattr(client, "provider", None) == "azure":
        check_path_id(model, argument=f"{argument} (the Azure deployment name)", example="my-embedding-deployment")
