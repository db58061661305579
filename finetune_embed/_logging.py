"""Logging: stdlib ``logging`` on the ``finetune_embed`` logger and its children; nothing is configured here.

``finetune_embed.client`` (DEBUG, one line per request), ``finetune_embed.retry`` (WARNING, one line per retry),
and one child per capability (``finetune_embed.dataset``, ``.finetuning``, ``.embeddings``, ``.index``).
A :class:`RedactingFilter` on our own loggers masks key-shaped tokens in records logged there (see
:mod:`finetune_embed._redact`); no filter is installed on anyone else's logger.
"""

from __future__ import annotations

import logging

from ._redact import redact

__all__ = ["RedactingFilter", "get_logger"]

ROOT = "finetune_embed"


class RedactingFilter(logging.Filter):
    """Masks key-shaped tokens (``sk-...`` keys, bearer tokens) in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = redact(message)
        if clean != message:
            record.msg = clean
            record.args = None
        return True


def get_logger(name: str) -> logging.Logger:
    """The logger ``finetune_embed.<name>``, with the redacting filter attached."""
    logger = logging.getLogger(f"{ROOT}.{name}" if name else ROOT)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger


logging.getLogger(ROOT).addHandler(logging.NullHandler())
