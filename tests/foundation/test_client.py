"""Client and AsyncClient: configuration, Azure, compatible servers, wrapping an SDK client, rate-limit headers."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from finetune_embed import (
    AsyncClient,
    Client,
    ConfigError,
    MissingAPIKeyError,
    RateLimits,
    RetryPolicy,
    ServerError,
)

from ._http import Script, error_body, ok

RATE_HEADERS = {
    "x-ratelimit-limit-requests": "3000",
    "x-ratelimit-limit-tokens": "1000000",
    "x-ratelimit-remaining-requests": "2999",
    "x-ratelimit-remaining-tokens": "999000",
    "x-ratelimit-reset-requests": "20ms",
    "x-ratelimit-reset-tokens": "6m0s",
}


class TestConfiguration:
    def test_environment_is_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OPENAI_API_KEY / BASE_URL / ORG_ID / PROJECT_ID are used when no argument is given."""
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-000000")
        monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
        monkeypatch.setenv("OPENAI_ORG_ID", "org-123")
        monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_9")
        script = Script([ok()])
        client = Client(transport=script.transport())
        client.request(lambda sdk: sdk.files.list())
        sent = script.requests[0]
        assert sent.headers["authorization"] == "Bearer sk-env-key-000000"
        assert sent.headers["openai-organization"] == "org-123"
        assert sent.headers["openai-project"] == "proj_9"
        assert str(sent.url) == "https://api.openai.com/v1/files"

    def test_arguments_win_over_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Explicit arguments beat the environment."""
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-000000")
        script = Script([ok()])
        Client(api_key="sk-arg-key-000000", transport=script.transport()).request(lambda sdk: sdk.files.list())
        assert script.requests[0].headers["authorization"] == "Bearer sk-arg-key-000000"

    def test_missing_key_is_an_error_at_the_first_call_not_at_construction(self) -> None:
        """Building a client without a key works; the first call says how to fix it."""
        client = Client(transport=Script([ok()]).transport())
        with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
            client.request(lambda sdk: sdk.files.list())

    def test_compatible_server_needs_no_key(self) -> None:
        """Any OpenAI-compatible server through base_url; no key needed."""
        script = Script([ok()])
        client = Client(base_url="http://localhost:8000/v1", transport=script.transport())
        assert client.provider == "compatible"
        client.request(lambda sdk: sdk.files.list())
        assert str(script.requests[0].url) == "http://localhost:8000/v1/files"

    def test_http_client_and_transport_are_exclusive(self) -> None:
        """Passing both is a configuration error."""
        with pytest.raises(ConfigError):
            Client(api_key="sk-x", http_client=httpx.Client(), transport=httpx.MockTransport(lambda r: ok()))

    def test_sdk_retries_are_off(self) -> None:
        """The SDK client we build has max_retries=0."""
        client = Client(api_key="sk-x-000000", transport=Script([ok()]).transport())
        assert client.openai.max_retries == 0

    def test_context_manager_closes(self) -> None:
        """`with Client(...)` closes the HTTP client it opened."""
        with Client(api_key="sk-x-000000", transport=Script([ok()]).transport()) as client:
            client.request(lambda sdk: sdk.files.list())
            http = client._http_client
        assert http is not None
        assert http.is_closed


class TestAzure:
    def test_azure_urls_headers_and_deployment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Client.azure uses the endpoint, api-version, the api-key header and deployment URLs."""
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://myres.openai.azure.com")
        monkeypatch.setenv("OPENAI_API_VERSION", "2025-04-01-preview")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-0000000000")
        emb = {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.6, 0.8]}],
            "model": "emb",
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
        script = Script([httpx.Response(200, json=emb)])
        client = Client.azure(transport=script.transport())
        assert client.provider == "azure"
        client.request(lambda sdk: sdk.embeddings.create(input=["hi"], model="my-deployment", encoding_format="float"))
        sent = script.requests[0]
        assert sent.url.path == "/openai/deployments/my-deployment/embeddings"
        assert sent.url.params["api-version"] == "2025-04-01-preview"
        assert sent.headers["api-key"] == "azure-key-0000000000"
        assert "azure-key" not in repr(client)

    def test_entra_id_token_provider(self) -> None:
        """An Entra ID token provider is called and sent as a bearer token."""
        script = Script([ok()])
        client = Client.azure(
            endpoint="https://myres.openai.azure.com",
            api_version="2025-04-01-preview",
            azure_ad_token_provider=lambda: "entra-token-abcdefgh",
            transport=script.transport(),
        )
        client.request(lambda sdk: sdk.files.list())
        assert script.requests[0].headers["authorization"] == "Bearer entra-token-abcdefgh"

    def test_azure_missing_settings_are_clear(self) -> None:
        """Missing endpoint, version or credential each say what to set."""
        with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
            _ = Client.azure(api_version="v", api_key="k").openai
        with pytest.raises(ConfigError, match="OPENAI_API_VERSION"):
            _ = Client.azure(endpoint="https://x.openai.azure.com", api_key="k").openai
        with pytest.raises(MissingAPIKeyError, match="AZURE_OPENAI_API_KEY"):
            _ = Client.azure(endpoint="https://x.openai.azure.com", api_version="v").openai


class TestFromOpenAI:
    def test_wraps_an_existing_client_and_disables_its_retries(self) -> None:
        """from_openai keeps the user's configuration (and transport) but turns the SDK's retries off."""
        script = Script([httpx.Response(500, json=error_body("x")), ok()])
        sdk = openai.OpenAI(api_key="sk-user-000000", http_client=httpx.Client(transport=script.transport()))
        assert sdk.max_retries == 2
        client = Client.from_openai(sdk, retry=RetryPolicy(max_attempts=2, sleep=lambda s: None))
        assert client.openai.max_retries == 0
        client.request(lambda s: s.files.list())
        assert script.attempts == 2  # our two attempts, not 2 x 3

    def test_wrapped_client_errors_are_ours(self) -> None:
        """Errors from a wrapped client are mapped too."""
        script = Script([httpx.Response(503, json=error_body("x"))])
        sdk = openai.OpenAI(api_key="sk-user-000000", http_client=httpx.Client(transport=script.transport()))
        client = Client.from_openai(sdk, retry=RetryPolicy(max_attempts=1))
        with pytest.raises(ServerError):
            client.request(lambda s: s.files.list())
        assert script.attempts == 1

    def test_async_from_openai(self) -> None:
        """AsyncClient.from_openai mirrors it."""
        script = Script([ok()])
        sdk = openai.AsyncOpenAI(api_key="sk-user-000000", http_client=httpx.AsyncClient(transport=script.transport()))
        client = AsyncClient.from_openai(sdk)
        assert client.openai.max_retries == 0
        asyncio.run(client.request(lambda s: s.files.list()))
        assert script.attempts == 1


class TestRateLimitHeaders:
    def test_request_raw_returns_headers_and_limits(self) -> None:
        """request_raw parses x-ratelimit-* headers into RateLimits; data is the SDK's type."""
        script = Script([ok(headers={**RATE_HEADERS, "x-request-id": "req_1"})])
        client = Client(api_key="sk-x-000000", transport=script.transport())
        raw = client.request_raw(lambda sdk: sdk.with_raw_response.files.list())
        assert raw.status_code == 200
        assert raw.request_id == "req_1"
        limits = raw.rate_limits
        assert limits.limit_requests == 3000
        assert limits.remaining_tokens == 999000
        assert limits.reset_requests == pytest.approx(0.02)
        assert limits.reset_tokens == 360.0
        assert limits.known
        assert type(raw.data).__name__ == "SyncCursorPage[FileObject]"

    def test_absent_or_negative_limits_are_unknown(self) -> None:
        """Azure and compatible servers send nothing or -1: both read as None."""
        limits = RateLimits.from_headers({"x-ratelimit-limit-requests": "-1", "x-ratelimit-remaining-tokens": "n/a"})
        assert limits.limit_requests is None
        assert limits.remaining_tokens is None
        assert not limits.known
        assert RateLimits.from_headers({}) == RateLimits()

    def test_async_request_raw(self) -> None:
        """The async twin returns the same."""
        script = Script([ok(headers=RATE_HEADERS)])
        client = AsyncClient(api_key="sk-x-000000", transport=script.transport())
        raw = asyncio.run(client.request_raw(lambda sdk: sdk.with_raw_response.files.list()))
        assert raw.rate_limits.limit_tokens == 1000000


class TestFromOpenAIOnItsOwnTransport:
    def test_default_httpx2_client_over_loopback(self) -> None:
        """A stock openai.OpenAI (httpx2 transport) wrapped with from_openai works against a real HTTP server."""
        from finetune_embed.testing import FakeOpenAI

        fake = FakeOpenAI()
        with fake.serve() as base_url:
            sdk = openai.OpenAI(api_key="sk-loopback-000000", base_url=base_url)
            assert not isinstance(sdk._client, httpx.Client)  # the SDK's own transport, not ours
            client = Client.from_openai(sdk, retry=RetryPolicy(max_attempts=3, sleep=lambda s: None))
            fake.inject(status=503, path="/v1/embeddings", times=1)
            response = client.request(
                lambda s: s.embeddings.create(input=["hello"], model="text-embedding-3-small", encoding_format="float")
            )
        assert len(response.data) == 1
        assert fake.ledger.count("/v1/embeddings") == 2  # one 503, one success: our retry, not the SDK's


class TestProvider:
    @pytest.mark.parametrize(
        ("base_url", "expected"),
        [
            (None, "openai"),
            ("https://api.openai.com/v1", "openai"),
            ("https://eu.api.openai.com/v1", "openai"),
            ("https://gateway.corp.example.com/openai/v1", "openai"),  # a corporate gateway in front of OpenAI
            ("https://oai.helicone.ai/v1", "openai"),  # Helicone in front of OpenAI
            ("https://litellm.example.org/v1", "openai"),  # a hosted LiteLLM proxy
            ("https://myres.openai.azure.com/openai/v1", "azure"),
            ("https://myres.cognitiveservices.azure.com/openai/v1", "azure"),
            ("http://localhost:11434/v1", "compatible"),  # Ollama
            ("http://127.0.0.1:8000/v1", "compatible"),  # vLLM
            ("http://[::1]:8080/v1", "compatible"),  # llama.cpp server
            ("http://0.0.0.0:1234/v1", "compatible"),  # LM Studio
            ("http://192.168.1.20:8080/v1", "compatible"),  # TEI on the LAN
            ("http://10.0.3.7/v1", "compatible"),
            ("http://172.20.0.5:80/v1", "compatible"),
            ("http://tei:80/v1", "compatible"),  # a Compose service name
            ("http://gpu-box.local:8000/v1", "compatible"),
            ("http://host.docker.internal:11434/v1", "compatible"),
            ("localhost:8000/v1", "compatible"),  # no scheme
        ],
    )
    def test_inferred_from_the_base_url(self, base_url: str | None, expected: str) -> None:
        """No URL or OpenAI → openai; Azure hosts → azure; local and private hosts → compatible; others → openai."""
        assert Client(base_url=base_url).provider == expected
        assert AsyncClient(base_url=base_url).provider == expected

    def test_environment_base_url_in_front_of_openai_stays_openai(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OPENAI_BASE_URL pointing at a proxy keeps OpenAI's catalog (the #12 report)."""
        monkeypatch.setenv("OPENAI_BASE_URL", "https://proxy.internal-tools.example.com/v1")
        assert Client().provider == "openai"

    def test_explicit_provider_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """provider= beats the URL; FINETUNE_EMBED_PROVIDER beats the URL too; the argument beats both."""
        assert Client(base_url="https://models.example.com/v1", provider="compatible").provider == "compatible"
        assert Client(base_url="http://localhost:4000/v1", provider="openai").provider == "openai"
        monkeypatch.setenv("FINETUNE_EMBED_PROVIDER", "compatible")
        assert Client(base_url="https://models.example.com/v1").provider == "compatible"
        assert Client(base_url="https://models.example.com/v1", provider="azure").provider == "azure"

    def test_provider_is_assignable_and_checked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """client.provider can be set; unknown values are a ConfigError (argument, attribute, environment)."""
        client = Client(base_url="https://models.example.com/v1")
        client.provider = "compatible"
        assert client.provider == "compatible"
        with pytest.raises(ConfigError, match="provider must be one of 'openai', 'azure', 'compatible'"):
            client.provider = "ollama"  # type: ignore[assignment]
        with pytest.raises(ConfigError, match="got 'vllm'"):
            Client(provider="vllm")  # type: ignore[arg-type]
        monkeypatch.setenv("FINETUNE_EMBED_PROVIDER", "local")
        with pytest.raises(ConfigError, match="FINETUNE_EMBED_PROVIDER must be one of"):
            Client()

    def test_azure_and_wrapped_clients(self) -> None:
        """Client.azure is azure; from_openai infers from the SDK client's URL unless provider= is given."""
        assert Client.azure(endpoint="https://x.openai.azure.com", api_version="v", api_key="k").provider == "azure"
        sdk = openai.OpenAI(api_key="sk-user-000000", base_url="http://localhost:8000/v1")
        assert Client.from_openai(sdk).provider == "compatible"
        assert Client.from_openai(sdk, provider="openai").provider == "openai"
        azure_sdk = openai.AzureOpenAI(api_key="k", azure_endpoint="https://x.openai.azure.com", api_version="v")
        assert Client.from_openai(azure_sdk).provider == "azure"
        assert AsyncClient.from_openai(openai.AsyncOpenAI(api_key="sk-user-000000")).provider == "openai"

    def test_azure_host_as_base_url_uses_the_plain_sdk_client(self) -> None:
        """Azure's OpenAI-compatible v1 API through base_url: provider azure, requests to that URL, Bearer key."""
        script = Script([ok()])
        url = "https://myres.openai.azure.com/openai/v1"
        client = Client(api_key="azure-key-0000000000", base_url=url, transport=script.transport())
        assert client.provider == "azure"
        client.request(lambda sdk: sdk.files.list())
        assert str(script.requests[0].url) == "https://myres.openai.azure.com/openai/v1/files"
        assert type(client.openai).__name__ == "OpenAI"

    def test_a_gateway_without_a_key_asks_for_one_and_names_the_way_out(self) -> None:
        """An unknown remote URL is OpenAI behind a proxy: a key is needed, and the error says how to opt out."""
        client = Client(base_url="https://models.example.com/v1", transport=Script([ok()]).transport())
        with pytest.raises(MissingAPIKeyError, match="provider='compatible'"):
            client.request(lambda sdk: sdk.files.list())
        compatible = Client(
            base_url="https://models.example.com/v1", provider="compatible", transport=Script([ok()]).transport()
        )
        compatible.request(lambda sdk: sdk.files.list())

    def test_repr_shows_the_provider(self) -> None:
        """repr names the provider and where requests go."""
        text = repr(Client(api_key="sk-x-000000", base_url="http://localhost:11434/v1"))
        assert text == "Client(provider='compatible', base_url='http://localhost:11434/v1', api_key='[redacted]')"
