"""``finetune_embed.testing``: a faithful, stateful fake of OpenAI's files, uploads, fine-tuning, models,
embeddings and batches API, for testing code without network or spend.

>>> from finetune_embed.testing import FakeOpenAI
>>> fake = FakeOpenAI(rpm=100, tpm=10_000)
>>> client = fake.client()          # a finetune_embed.Client talking to the fake in-process
>>> sdk = fake.openai_client()      # or the official SDK client

See docs/testing.md.
"""

from __future__ import annotations

from ._clock import FakeClock
from ._compatible import PROFILES, Processing, ServerProfile
from ._errors import error_body
from ._fake import FakeOpenAI
from ._ledger import Ledger, RequestRecord
from ._ratelimit import format_duration
from ._state import JobSpeed

__all__ = [
    "PROFILES",
    "FakeClock",
    "FakeOpenAI",
    "JobSpeed",
    "Ledger",
    "Processing",
    "RequestRecord",
    "ServerProfile",
    "error_body",
    "format_duration",
]
