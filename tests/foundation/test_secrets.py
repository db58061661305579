"""The API key never appears in a repr, str, log record, exception message or file we write."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from finetune_embed import Client, FinetuneEmbedError, RetryPolicy
from finetune_embed._exceptions import APIError

from ._http import Script, error_body

CANARY = "sk-proj-CANARY0123456789abcdefXYZ"
AZURE_CANARY = "azurecanary0123456789abcdef"


def test_canary_key_never_escapes(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """Representative calls with a canary key; everything produced is scanned."""
    produced: list[str] = []
    # the server echoes the key, as OpenAI's 401 message partly does
    script = Script(
        [
            httpx.Response(500, json=error_body(f"upstream failed for key {CANARY}")),
            httpx.Response(401, json=error_body(f"Incorrect API key provided: {CANARY}.", code="invalid_api_key")),
        ]
    )
    client = Client(api_key=CANARY, transport=script.transport(), retry=RetryPolicy(sleep=lambda s: None))
    produced += [repr(client), str(client)]
    with caplog.at_level(logging.DEBUG), pytest.raises(FinetuneEmbedError) as info:
        client.request(lambda sdk: sdk.files.list(), description="list files")
    err = info.value
    produced += [str(err), repr(err), err.message, str(err.args)]
    assert isinstance(err, APIError)
    produced += [caplog.text] + [r.getMessage() for r in caplog.records]
    azure = Client.azure(endpoint="https://x.openai.azure.com", api_version="2025-04-01-preview", api_key=AZURE_CANARY)
    produced += [repr(azure), str(azure)]
    for text in produced:
        assert CANARY not in text
        assert AZURE_CANARY not in text
    assert "[redacted]" in str(err)
    # the request did carry the key (the scan is not vacuous)
    assert script.requests[0].headers["authorization"] == f"Bearer {CANARY}"
