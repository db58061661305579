"""The API key never appears in a repr, str, log record, exception message or file we write; and nothing but a
secret is ever masked (no process-wide registry, no substring masking)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from finetune_embed import (
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    Client,
    ConfigError,
    DatasetFormatError,
    FinetuneEmbedError,
    RetryPolicy,
)
from finetune_embed._exceptions import APIError
from finetune_embed._redact import MASK, Secrets, redact

from ._http import Script, error_body, ok

CANARY = "sk-proj-CANARY0123456789abcdefXYZ"
AZURE_CANARY = "azurecanary0123456789abcdef"
NO_RETRY = RetryPolicy(max_attempts=1)


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
    produced += [str(err.body), str(err.__cause__), repr(err.__cause__)]
    produced += [caplog.text] + [r.getMessage() for r in caplog.records]
    azure = Client.azure(endpoint="https://x.openai.azure.com", api_version="2025-04-01-preview", api_key=AZURE_CANARY)
    produced += [repr(azure), str(azure)]
    for text in produced:
        assert CANARY not in text
        assert AZURE_CANARY not in text
    assert "[redacted]" in str(err)
    # the request did carry the key (the scan is not vacuous)
    assert script.sent[0][1]["authorization"] == f"Bearer {CANARY}"


class TestOnlySecretsAreMasked:
    @pytest.mark.parametrize("key", ["test", "EMPTY", "ollama", "data"])
    def test_placeholder_keys_leave_paths_intact(self, key: str) -> None:
        """With a placeholder key (local servers), errors about tests/test_data.jsonl print the path intact, from
        the server and from the library alike (the #11 report: `[redacted]s/[redacted]_data.jsonl`)."""
        message = "Invalid file tests/test_data.jsonl: test data is empty"
        script = Script([httpx.Response(400, json=error_body(message))])
        client = Client(api_key=key, base_url="http://localhost:8000/v1", transport=script.transport(), retry=NO_RETRY)
        with pytest.raises(FinetuneEmbedError) as info:
            client.request(lambda sdk: sdk.files.list())
        assert message in str(info.value)
        assert message in str(info.value.__cause__)
        error = DatasetFormatError("test data is empty", path="tests/test_data.jsonl", line=3)
        assert str(error) == "tests/test_data.jsonl:3: test data is empty"
        assert "tests/test_data.jsonl" in str(ConfigError(f"{key} tests/test_data.jsonl"))

    def test_no_registry_across_clients(self) -> None:
        """A key given to one client is not masked in text that has nothing to do with that client."""
        secret = "gateway-secret-0042"
        Client(api_key=secret)
        assert secret in str(ConfigError(f"the column is named {secret}"))
        assert redact(f"column {secret}") == f"column {secret}"

    def test_a_clients_secret_is_masked_as_a_whole_token_only(self) -> None:
        """The client's own secret is masked where it stands alone, never inside a longer word or path."""
        secrets = Secrets.of("abcdefgh1234", "EMPTY", None)
        assert secrets.values == ("abcdefgh1234",)
        assert secrets.scrub("key abcdefgh1234 refused") == f"key {MASK} refused"
        assert secrets.scrub("key=abcdefgh1234&x=1") == f"key={MASK}&x=1"
        assert secrets.scrub("xabcdefgh1234 abcdefgh12345") == "xabcdefgh1234 abcdefgh12345"

    def test_key_shapes(self) -> None:
        """Only OpenAI-key-shaped tokens and bearer tokens are masked in free text."""
        assert redact(f"got {CANARY}.") == f"got {MASK}."
        assert redact("Authorization: Bearer abcdefgh12345") == f"Authorization: Bearer {MASK}"
        for text in ("data/sk-learn-experiments-2024-final.jsonl", "task-0123456789ABCdefghijkl", "tests/x.jsonl"):
            assert redact(text) == text


def response_request(exc: BaseException | None) -> Any:
    """The request held by ``exc.response`` (the one that went on the wire), or None."""
    response = getattr(exc, "response", None)
    return getattr(response, "request", None)


def _assert_credentials_masked(*requests: Any, secret: str) -> None:
    """Each request object an exception holds carries no secret; where it still has an Authorization header (SDK
    versions differ on whether auth is applied to the built request or by an auth flow on send), it is masked."""
    held = [r for r in requests if r is not None]
    assert held, "the exception chain holds no request object"
    for request in held:
        assert secret not in str(request.url)
        for name, value in request.headers.items():
            assert secret not in value, name
        if "authorization" in request.headers:
            assert request.headers["authorization"] == MASK


class TestKeyInBaseURL:
    USER_URL = "https://alice:pw-S3cretPassw0rd@gateway.example.com/v1"
    QUERY_URL = "https://gateway.example.com/v1?api-key=QuerySecret0123456&api-version=2025-01-01"

    def test_userinfo_is_sent_as_basic_auth_and_never_shown(self, caplog: pytest.LogCaptureFixture) -> None:
        """user:password@ leaves the URL: sent as Authorization: Basic (what httpx does with it), absent from
        repr, base_url, httpx's INFO request line and the exception's request."""
        script = Script([httpx.Response(401, json=error_body("no"))])
        client = Client(api_key="sk-x-000000", base_url=self.USER_URL, transport=script.transport(), retry=NO_RETRY)
        assert client.base_url == "https://gateway.example.com/v1"
        assert client.provider == "openai"
        with caplog.at_level(logging.INFO, logger="httpx"), pytest.raises(AuthenticationError) as info:
            client.request(lambda sdk: sdk.files.list())
        url, headers = script.sent[0]
        assert url == "https://gateway.example.com/v1/files"
        assert headers["authorization"].startswith("Basic ")
        request_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
        assert request_lines
        assert "gateway.example.com/v1/files" in request_lines[0]
        request = info.value.__cause__.request  # type: ignore[union-attr]
        texts = [repr(client), str(client.base_url), caplog.text, str(info.value), str(request.url)]
        for text in [*texts, str(dict(request.headers))]:
            assert "S3cretPassw0rd" not in text
        _assert_credentials_masked(request, response_request(info.value.__cause__), secret="S3cretPassw0rd")

    def test_query_key_goes_on_the_wire_only(self, caplog: pytest.LogCaptureFixture) -> None:
        """?api-key= reaches the server but not httpx's INFO log line, repr or the exception's request URL; the
        plain query (api-version) is kept, and the path is right (the SDK alone mangles a base URL's query)."""
        script = Script([ok(), httpx.Response(500, json=error_body("down"))])
        client = Client(api_key="sk-x-000000", base_url=self.QUERY_URL, transport=script.transport(), retry=NO_RETRY)
        assert client.base_url == "https://gateway.example.com/v1?api-version=2025-01-01&api-key=[redacted]"
        with caplog.at_level(logging.INFO, logger="httpx"):
            client.request(lambda sdk: sdk.files.list())
            with pytest.raises(FinetuneEmbedError) as info:
                client.request(lambda sdk: sdk.files.list())
        wire = httpx.URL(script.sent[0][0])
        assert wire.path == "/v1/files"
        assert wire.params["api-key"] == "QuerySecret0123456"
        assert wire.params["api-version"] == "2025-01-01"
        request_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
        assert len(request_lines) == 2
        assert all("api-version=2025-01-01" in line for line in request_lines)
        cause = info.value.__cause__
        for text in (caplog.text, repr(client), str(info.value), str(cause.request.url)):  # type: ignore[union-attr]
            assert "QuerySecret0123456" not in text

    def test_query_key_async(self, caplog: pytest.LogCaptureFixture) -> None:
        """The async client does the same."""
        script = Script([ok()])
        client = AsyncClient(api_key="sk-x-000000", base_url=self.QUERY_URL, transport=script.transport())
        with caplog.at_level(logging.INFO, logger="httpx"):
            asyncio.run(client.request(lambda sdk: sdk.files.list()))
        assert httpx.URL(script.sent[0][0]).params["api-key"] == "QuerySecret0123456"
        assert "QuerySecret0123456" not in caplog.text
        assert "HTTP Request" in caplog.text

    def test_query_key_with_the_callers_http_client_still_works(self) -> None:
        """With a caller's own http_client the parameter travels in the URL (documented), and the call works."""
        script = Script([ok()])
        http = httpx.Client(transport=script.transport())
        client = Client(api_key="sk-x-000000", base_url=self.QUERY_URL, http_client=http)
        client.request(lambda sdk: sdk.files.list())
        wire = httpx.URL(script.sent[0][0])
        assert (wire.path, wire.params["api-key"]) == ("/v1/files", "QuerySecret0123456")


class TestExceptionChain:
    def test_cause_request_headers_are_scrubbed(self) -> None:
        """exc.__cause__.request.headers (and .response.request) no longer hold the key after the call."""
        script = Script([httpx.Response(401, json=error_body("bad key"))])
        client = Client(api_key=CANARY, transport=script.transport(), retry=NO_RETRY)
        with pytest.raises(AuthenticationError) as info:
            client.request(lambda sdk: sdk.files.list())
        cause = info.value.__cause__
        assert cause is not None
        _assert_credentials_masked(cause.request, response_request(cause), secret=CANARY)  # type: ignore[attr-defined]
        assert script.sent[0][1]["authorization"] == f"Bearer {CANARY}"

    def test_azure_api_key_header_and_timeouts(self) -> None:
        """Azure's api-key header is scrubbed too, and so is the request inside a timeout's chain."""
        script = Script([httpx.ReadTimeout("slow")])
        client = Client.azure(
            endpoint="https://x.openai.azure.com", api_version="2025-04-01-preview", api_key=AZURE_CANARY,
            transport=script.transport(), retry=NO_RETRY,
        )
        with pytest.raises(APITimeoutError) as info:
            client.request(lambda sdk: sdk.files.list())
        headers = []
        exc: BaseException | None = info.value
        while exc is not None:
            if isinstance(exc, httpx.TransportError):
                headers.append(dict(exc.request.headers))
            exc = exc.__cause__ or exc.__context__
        assert headers  # the httpx.ReadTimeout at the bottom of the chain holds the request
        for sent in headers:
            assert AZURE_CANARY not in str(sent)
            assert sent["api-key"] == MASK
        assert script.sent[0][1]["api-key"] == AZURE_CANARY

    def test_a_timeout_while_a_streamed_body_is_read_is_ours(self, tmp_path: Path) -> None:
        """httpx's own transport errors raised while a download streams become APITimeoutError, scrubbed."""

        class Stalling(httpx.SyncByteStream):
            def __iter__(self):  # type: ignore[no-untyped-def]
                yield b"first,"
                raise httpx.ReadTimeout("stalled")

        script = Script([lambda request: httpx.Response(200, stream=Stalling())])
        client = Client(api_key=CANARY, transport=script.transport(), retry=NO_RETRY)
        with pytest.raises(APITimeoutError) as info:
            client.files.download("file-abc", tmp_path / "out.jsonl")
        assert info.value.__cause__ is not None
        assert CANARY not in str(dict(info.value.__cause__.request.headers))  # type: ignore[attr-defined]
        assert not list(tmp_path.iterdir())  # nothing half-written is left
