"""The client layer: :class:`Client` and :class:`AsyncClient` over the official ``openai`` SDK.

Every API call of the library goes through :meth:`Client.request` (or :meth:`Client.request_raw` when the
response headers are needed, e.g. the ``x-ratelimit-*`` headers). There the SDK's exceptions become ours and
our :class:`~finetune_embed.RetryPolicy` applies; the SDK's own retries are switched off (``max_retries=0``) on
every SDK client we build or wrap, so exactly one retry layer exists.

The SDK client is built on first use, not at construction, so a missing API key is reported by the first
call that needs it (as :class:`~finetune_embed.MissingAPIKeyError`) and ``import finetune_embed`` stays cheap.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ._exceptions import ConfigError, MissingAPIKeyError, map_openai_error
from ._logging import get_logger
from ._redact import mask_secret, register_secret
from .retry import RetryPolicy, parse_duration

if TYPE_CHECKING:
    import httpx
    import openai as _sdk
    from openai._legacy_response import LegacyAPIResponse

    from .chat import AsyncChatCompletions, ChatCompletions
    from .finetuning import AsyncFileManager, AsyncJobManager, FileManager, JobManager


__all__ = ["AsyncClient", "Client", "RateLimits", "RawResponse"]

logger = get_logger("client")

T = TypeVar("T")
Provider = Literal["openai", "azure", "compatible"]
DEFAULT_TIMEOUT = 60.0
OPENAI_HOST = "api.openai.com"


@dataclass(frozen=True)
class RateLimits:
    """The ``x-ratelimit-*`` headers of one response. ``None`` where a header is absent or ``-1`` (as on Azure and
    many compatible servers). Reset times are in seconds."""

    limit_requests: int | None = None
    limit_tokens: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests: float | None = None
    reset_tokens: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimits:
        """Parse the headers (names in any case)."""
        lower = {k.lower(): v for k, v in headers.items()}

        def number(name: str) -> int | None:
            value = lower.get(f"x-ratelimit-{name}")
            if value is None:
                return None
            try:
                n = int(float(value))
            except ValueError:
                return None
            return None if n < 0 else n

        def duration(name: str) -> float | None:
            value = lower.get(f"x-ratelimit-{name}")
            return parse_duration(value) if value else None

        return cls(
            limit_requests=number("limit-requests"),
            limit_tokens=number("limit-tokens"),
            remaining_requests=number("remaining-requests"),
            remaining_tokens=number("remaining-tokens"),
            reset_requests=duration("reset-requests"),
            reset_tokens=duration("reset-tokens"),
        )

    @property
    def known(self) -> bool:
        """Whether the server sent any usable limit."""
        return self.limit_requests is not None or self.limit_tokens is not None


@dataclass(frozen=True)
class RawResponse(Generic[T]):
    """A parsed response with its status, headers, request id and rate-limit state."""

    data: T
    status_code: int
    headers: Mapping[str, str]
    request_id: str | None
    rate_limits: RateLimits


def _raw(response: LegacyAPIResponse[T]) -> RawResponse[T]:
    headers = {str(k).lower(): str(v) for k, v in response.headers.items()}
    return RawResponse(
        data=response.parse(),
        status_code=response.status_code,
        headers=headers,
        request_id=headers.get("x-request-id"),
        rate_limits=RateLimits.from_headers(headers),
    )


def _provider_for(base_url: str | None) -> Provider:
    if not base_url:
        return "openai"
    return "openai" if OPENAI_HOST in base_url else "compatible"


class _BaseClient:
    """Settings shared by the sync and async clients (no I/O here)."""

    provider: Provider

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.organization = organization or os.environ.get("OPENAI_ORG_ID") or None
        self.project = project or os.environ.get("OPENAI_PROJECT_ID") or None
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.default_headers = dict(default_headers or {})
        self.provider = _provider_for(self.base_url)
        # Azure
        self.azure_endpoint: str | None = None
        self.api_version: str | None = None
        self._azure_ad_token_provider: Callable[[], str] | None = None
        self._azure_ad_token: str | None = None
        self.azure_deployment: str | None = None
        register_secret(self._api_key)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = self.azure_endpoint if self.provider == "azure" else (self.base_url or f"https://{OPENAI_HOST}/v1")
        key = mask_secret(self._api_key)
        return f"{type(self).__name__}(provider={self.provider!r}, base_url={where!r}, api_key={key})"

    @property
    def api_key_set(self) -> bool:
        """Whether a key (or an Azure token provider) is configured; the key itself is never exposed."""
        return bool(self._api_key or self._azure_ad_token_provider or self._azure_ad_token)

    def _configure_azure(
        self,
        *,
        endpoint: str | None,
        api_version: str | None,
        api_key: str | None,
        azure_ad_token: str | None,
        azure_ad_token_provider: Callable[[], str] | None,
        deployment: str | None,
    ) -> None:
        self.provider = "azure"
        self.azure_endpoint = endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT") or None
        self.api_version = api_version or os.environ.get("OPENAI_API_VERSION") or None
        self._api_key = api_key if api_key is not None else os.environ.get("AZURE_OPENAI_API_KEY")
        self._azure_ad_token = azure_ad_token or os.environ.get("AZURE_OPENAI_AD_TOKEN") or None
        self._azure_ad_token_provider = azure_ad_token_provider
        self.azure_deployment = deployment
        self.base_url = None
        register_secret(self._api_key)
        register_secret(self._azure_ad_token)

    def _sdk_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_retries": 0, "timeout": self.timeout}
        if self.default_headers:
            kwargs["default_headers"] = self.default_headers
        if self.provider == "azure":
            if not self.azure_endpoint:
                raise ConfigError(
                    "Azure OpenAI needs an endpoint: pass endpoint='https://<resource>.openai.azure.com' to "
                    "Client.azure() or set AZURE_OPENAI_ENDPOINT."
                )
            if not self.api_version:
                raise ConfigError(
                    "Azure OpenAI needs an API version: pass api_version= to Client.azure() or set "
                    "OPENAI_API_VERSION (e.g. 2025-04-01-preview)."
                )
            if not (self._api_key or self._azure_ad_token or self._azure_ad_token_provider):
                raise MissingAPIKeyError(
                    "No Azure OpenAI credential: pass api_key= or azure_ad_token_provider= to Client.azure(), or set "
                    "AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN)."
                )
            kwargs.update(
                azure_endpoint=self.azure_endpoint,
                api_version=self.api_version,
                api_key=self._api_key,
                azure_ad_token=self._azure_ad_token,
                azure_ad_token_provider=self._azure_ad_token_provider,
                azure_deployment=self.azure_deployment,
            )
            return kwargs
        api_key = self._api_key
        if not api_key:
            if self.provider == "compatible":
                api_key = "EMPTY"  # local OpenAI-compatible servers (vLLM, Ollama, ...) take any key
            else:
                raise MissingAPIKeyError(
                    "No OpenAI API key: set OPENAI_API_KEY or pass api_key= to Client(). "
                    "(For an OpenAI-compatible server pass base_url=; for Azure use Client.azure().)"
                )
        kwargs.update(api_key=api_key, base_url=self.base_url, organization=self.organization, project=self.project)
        return kwargs


class Client(_BaseClient):
    """A synchronous client for OpenAI, Azure OpenAI or any OpenAI-compatible server.

    **Parameters:**

    * ``api_key`` - defaults to ``OPENAI_API_KEY``; only needed at the first call.
    * ``base_url`` - defaults to ``OPENAI_BASE_URL``; any OpenAI-compatible server.
    * ``organization``, ``project`` - default to ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID``.
    * ``timeout`` - seconds per HTTP request.
    * ``retry`` - the :class:`RetryPolicy` for every call (the SDK's retries are off).
    * ``http_client`` / ``transport`` - an ``httpx.Client`` to send requests with, or an httpx transport for the
      client we build (the testing fake provides one).

    >>> client = Client(api_key="sk-...")           # doctest: +SKIP
    >>> client.jobs.list()                            # doctest: +SKIP
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            timeout=timeout,
            retry=retry,
            default_headers=default_headers,
        )
        if http_client is not None and transport is not None:
            raise ConfigError("Pass either http_client= or transport=, not both.")
        self._http_client = http_client
        self._transport = transport
        self._owns_http = http_client is None
        self._sdk: _sdk.OpenAI | None = None

    @classmethod
    def azure(
        cls,
        *,
        endpoint: str | None = None,
        api_version: str | None = None,
        api_key: str | None = None,
        azure_ad_token: str | None = None,
        azure_ad_token_provider: Callable[[], str] | None = None,
        deployment: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> Client:
        """A client for Azure OpenAI.

        Defaults come from ``AZURE_OPENAI_ENDPOINT``, ``OPENAI_API_VERSION`` and ``AZURE_OPENAI_API_KEY`` (or
        ``AZURE_OPENAI_AD_TOKEN``); for Entra ID pass ``azure_ad_token_provider`` (e.g. from
        ``azure.identity.get_bearer_token_provider``). On Azure the ``model`` of an embeddings call is the
        *deployment* name.
        """
        client = cls(timeout=timeout, retry=retry, http_client=http_client, transport=transport, api_key="")
        client._configure_azure(
            endpoint=endpoint,
            api_version=api_version,
            api_key=api_key,
            azure_ad_token=azure_ad_token,
            azure_ad_token_provider=azure_ad_token_provider,
            deployment=deployment,
        )
        return client

    @classmethod
    def from_openai(cls, client: _sdk.OpenAI, *, retry: RetryPolicy | None = None) -> Client:
        """Wrap an SDK client the user already configured (any transport; Azure too). Its retries are switched off
        (``with_options(max_retries=0)``) so that ``retry`` is the only retry layer."""
        import openai as _openai

        wrapped = cls(api_key="", retry=retry)
        register_secret(getattr(client, "api_key", None))
        wrapped._api_key = getattr(client, "api_key", None) or None
        wrapped.base_url = str(client.base_url)
        if isinstance(client, _openai.AzureOpenAI):
            wrapped.provider = "azure"
            wrapped.azure_endpoint = str(client.base_url)
        else:
            wrapped.provider = _provider_for(wrapped.base_url)
        wrapped._sdk = client.with_options(max_retries=0)
        wrapped._owns_http = False
        return wrapped

    @property
    def openai(self) -> _sdk.OpenAI:
        """The underlying SDK client (retries off). Built on first use."""
        with self._lock:
            if self._sdk is None:
                import httpx
                import openai as _openai

                kwargs = self._sdk_kwargs()
                if self._http_client is None:
                    self._http_client = httpx.Client(
                        transport=self._transport,
                        timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                        follow_redirects=True,
                    )
                kwargs["http_client"] = self._http_client
                try:
                    if self.provider == "azure":
                        self._sdk = _openai.AzureOpenAI(**kwargs)
                    else:
                        self._sdk = _openai.OpenAI(**kwargs)
                except _openai.OpenAIError as exc:
                    raise map_openai_error(exc) from exc
            return self._sdk

    def request(self, op: Callable[[_sdk.OpenAI], T], *, description: str = "API call") -> T:
        """Run ``op(sdk_client)`` under the retry policy, translating SDK errors to ours."""
        import openai as _openai

        sdk = self.openai

        def attempt() -> T:
            try:
                logger.debug("API request: %s", description)
                return op(sdk)
            except _openai.OpenAIError as exc:
                raise map_openai_error(exc) from exc

        return self.retry.call(attempt, description=description)

    def request_raw(
        self, op: Callable[[_sdk.OpenAI], LegacyAPIResponse[T]], *, description: str = "API call"
    ) -> RawResponse[T]:
        """Like :meth:`request` for a ``with_raw_response`` call: returns the parsed data with the headers and
        rate-limit state (``op`` receives the SDK client; call ``sdk.with_raw_response.<resource>.<method>``)."""
        return self.request(lambda sdk: _raw(op(sdk)), description=description)

    @property
    def files(self) -> FileManager:
        """Upload (validated first), list, download and delete files."""
        from .finetuning import FileManager

        return FileManager(self)

    @property
    def jobs(self) -> JobManager:
        """Create, follow and manage fine-tuning jobs."""
        from .finetuning import JobManager

        return JobManager(self)

    @property
    def chat(self) -> ChatCompletions:
        """Chat completions with the retry policy, rate pacing, concurrency and a response cache (one instance per
        client; ``ChatCompletions(client, ...)`` for other settings)."""
        from .chat import ChatCompletions

        with self._lock:
            chat = self.__dict__.get("_chat")
            if chat is None:
                chat = self.__dict__["_chat"] = ChatCompletions(self)
        return chat

    def close(self) -> None:
        """Close the HTTP connections this client opened (and the chat cache ``client.chat`` opened)."""
        if self.__dict__.get("_chat") is not None:
            self.__dict__["_chat"].close()
        if self._owns_http and self._http_client is not None:
            self._http_client.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient(_BaseClient):
    """The asyncio twin of :class:`Client` (same arguments; ``aclose()`` / ``async with``)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            timeout=timeout,
            retry=retry,
            default_headers=default_headers,
        )
        if http_client is not None and transport is not None:
            raise ConfigError("Pass either http_client= or transport=, not both.")
        self._http_client = http_client
        self._transport = transport
        self._owns_http = http_client is None
        self._sdk: _sdk.AsyncOpenAI | None = None

    @classmethod
    def azure(
        cls,
        *,
        endpoint: str | None = None,
        api_version: str | None = None,
        api_key: str | None = None,
        azure_ad_token: str | None = None,
        azure_ad_token_provider: Callable[[], str] | None = None,
        deployment: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> AsyncClient:
        """An async client for Azure OpenAI (see :meth:`Client.azure`)."""
        client = cls(timeout=timeout, retry=retry, http_client=http_client, transport=transport, api_key="")
        client._configure_azure(
            endpoint=endpoint,
            api_version=api_version,
            api_key=api_key,
            azure_ad_token=azure_ad_token,
            azure_ad_token_provider=azure_ad_token_provider,
            deployment=deployment,
        )
        return client

    @classmethod
    def from_openai(cls, client: _sdk.AsyncOpenAI, *, retry: RetryPolicy | None = None) -> AsyncClient:
        """Wrap an ``_sdk.AsyncOpenAI`` (or ``AsyncAzureOpenAI``) with its retries switched off."""
        import openai as _openai

        wrapped = cls(api_key="", retry=retry)
        register_secret(getattr(client, "api_key", None))
        wrapped._api_key = getattr(client, "api_key", None) or None
        wrapped.base_url = str(client.base_url)
        if isinstance(client, _openai.AsyncAzureOpenAI):
            wrapped.provider = "azure"
            wrapped.azure_endpoint = str(client.base_url)
        else:
            wrapped.provider = _provider_for(wrapped.base_url)
        wrapped._sdk = client.with_options(max_retries=0)
        wrapped._owns_http = False
        return wrapped

    @property
    def openai(self) -> _sdk.AsyncOpenAI:
        """The underlying async SDK client (retries off). Built on first use."""
        with self._lock:
            if self._sdk is None:
                import httpx
                import openai as _openai

                kwargs = self._sdk_kwargs()
                if self._http_client is None:
                    self._http_client = httpx.AsyncClient(
                        transport=self._transport,
                        timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                        follow_redirects=True,
                    )
                kwargs["http_client"] = self._http_client
                try:
                    if self.provider == "azure":
                        self._sdk = _openai.AsyncAzureOpenAI(**kwargs)
                    else:
                        self._sdk = _openai.AsyncOpenAI(**kwargs)
                except _openai.OpenAIError as exc:
                    raise map_openai_error(exc) from exc
            return self._sdk

    async def request(self, op: Callable[[_sdk.AsyncOpenAI], Awaitable[T]], *, description: str = "API call") -> T:
        """Await ``op(sdk_client)`` under the retry policy, translating SDK errors to ours."""
        import openai as _openai

        sdk = self.openai

        async def attempt() -> T:
            try:
                logger.debug("API request: %s", description)
                return await op(sdk)
            except _openai.OpenAIError as exc:
                raise map_openai_error(exc) from exc

        return await self.retry.acall(attempt, description=description)

    async def request_raw(
        self,
        op: Callable[[_sdk.AsyncOpenAI], Awaitable[LegacyAPIResponse[T]]],
        *,
        description: str = "API call",
    ) -> RawResponse[T]:
        """The async twin of :meth:`Client.request_raw`."""

        async def call(sdk: _sdk.AsyncOpenAI) -> RawResponse[T]:
            return _raw(await op(sdk))

        return await self.request(call, description=description)

    @property
    def files(self) -> AsyncFileManager:
        """Upload, list, download and delete files (async)."""
        from .finetuning import AsyncFileManager

        return AsyncFileManager(self)

    @property
    def jobs(self) -> AsyncJobManager:
        """Create, follow and manage fine-tuning jobs (async)."""
        from .finetuning import AsyncJobManager

        return AsyncJobManager(self)

    @property
    def chat(self) -> AsyncChatCompletions:
        """Chat completions (async): see :attr:`Client.chat`."""
        from .chat import AsyncChatCompletions

        with self._lock:
            chat = self.__dict__.get("_chat")
            if chat is None:
                chat = self.__dict__["_chat"] = AsyncChatCompletions(self)
        return chat

    async def aclose(self) -> None:
        """Close the HTTP connections this client opened (and the chat cache ``client.chat`` opened)."""
        if self.__dict__.get("_chat") is not None:
            await self.__dict__["_chat"].aclose()
        if self._owns_http and self._http_client is not None:
            await self._http_client.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
