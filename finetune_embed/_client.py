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
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from ._endpoint import OPENAI_HOST, BaseURL, Provider, check_provider, infer_provider, provider_from_env, split_base_url
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ConfigError,
    FinetuneEmbedError,
    MissingAPIKeyError,
    map_openai_error,
)
from ._ids import check_path_id
from ._logging import get_logger
from ._redact import Secrets, mask_secret
from .retry import RetryPolicy, parse_duration

if TYPE_CHECKING:
    import httpx
    import openai as _sdk
    from openai._legacy_response import LegacyAPIResponse

    from .chat import AsyncChatCompletions, ChatCompletions
    from .finetuning import AsyncFileManager, AsyncJobManager, FileManager, JobManager


__all__ = ["AsyncClient", "Client", "Provider", "RateLimits", "RawResponse"]

logger = get_logger("client")

T = TypeVar("T")
HttpT = TypeVar("HttpT")  # httpx.Client | httpx.AsyncClient
TransportT = TypeVar("TransportT")  # httpx.BaseTransport | httpx.AsyncBaseTransport
SdkT = TypeVar("SdkT")  # openai.OpenAI | openai.AsyncOpenAI
DEFAULT_TIMEOUT = 60.0


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


class _BaseClient(Generic[HttpT, TransportT, SdkT]):
    """Everything the sync and async clients share, none of it I/O: settings, the provider, Azure, the SDK
    client's arguments, wrapping an SDK client, error translation (the role httpx's ``BaseClient`` plays).

    The subclasses add what awaits or blocks: ``request``, ``request_raw``, the managers and closing.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        provider: Provider | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: HttpT | None = None,
        transport: TransportT | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ConfigError("Pass either http_client= or transport=, not both.")
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._url = split_base_url(base_url or os.environ.get("OPENAI_BASE_URL") or None)
        self.organization = organization or os.environ.get("OPENAI_ORG_ID") or None
        self.project = project or os.environ.get("OPENAI_PROJECT_ID") or None
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.default_headers = dict(default_headers or {})
        chosen = check_provider(provider) if provider is not None else provider_from_env()
        self._provider: Provider = chosen or infer_provider(self._url.url)
        # Azure (Client.azure(...), or a wrapped AzureOpenAI): the SDK's Azure client is used
        self._azure_sdk = False
        self.azure_endpoint: str | None = None
        self.api_version: str | None = None
        self._azure_ad_token_provider: Callable[[], str] | None = None
        self._azure_ad_token: str | None = None
        self.azure_deployment: str | None = None
        self._http_client = http_client
        self._transport = transport
        self._owns_http = http_client is None
        self._sdk: SdkT | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = self.azure_endpoint if self._azure_sdk else (self.base_url or f"https://{OPENAI_HOST}/v1")
        key = mask_secret(self._api_key)
        return f"{type(self).__name__}(provider={self.provider!r}, base_url={where!r}, api_key={key})"

    # --- settings -------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str | None:
        """Where requests go, as shown: credentials given in the URL (``user:password@``, ``?api-key=...``) are
        taken out of it (masked here; sent as a header, or added to the URL on the wire only)."""
        return self._url.shown

    @base_url.setter
    def base_url(self, value: str | None) -> None:
        self._url = split_base_url(value)

    @property
    def provider(self) -> Provider:
        """``"openai"``, ``"azure"`` or ``"compatible"``: which catalog facts apply (shutdown dates, refusals,
        model limits). Given as ``provider=`` (or ``FINETUNE_EMBED_PROVIDER``), else inferred from the base URL:
        no URL or ``api.openai.com`` → openai; Azure hosts → azure; localhost, loopback and private-network
        hosts → compatible; any other URL (a gateway or proxy in front of OpenAI) stays openai. Assignable."""
        return self._provider

    @provider.setter
    def provider(self, value: Provider) -> None:
        self._provider = check_provider(value)

    @property
    def api_key_set(self) -> bool:
        """Whether a key (or an Azure token provider) is configured; the key itself is never exposed."""
        return bool(self._api_key or self._azure_ad_token_provider or self._azure_ad_token)

    # --- constructors ---------------------------------------------------------------------------------------

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
        http_client: HttpT | None = None,
        transport: TransportT | None = None,
    ) -> Self:
        """A client for Azure OpenAI (``provider="azure"``).

        Defaults come from ``AZURE_OPENAI_ENDPOINT``, ``OPENAI_API_VERSION`` and ``AZURE_OPENAI_API_KEY`` (or
        ``AZURE_OPENAI_AD_TOKEN``); for Entra ID pass ``azure_ad_token_provider`` (e.g. from
        ``azure.identity.get_bearer_token_provider``). On Azure the ``model`` of an embeddings call is the
        *deployment* name. Deployment names go into the URL path, so one that is not an id (a ``/``, ``..``,
        whitespace, ...) is refused with :class:`~finetune_embed.InvalidArgumentError` before anything is sent.
        """
        if deployment is not None:
            check_path_id(deployment, argument="deployment", example="my-embedding-deployment")
        client = cls(
            timeout=timeout, retry=retry, http_client=http_client, transport=transport, api_key="", provider="azure"
        )
        client._azure_sdk = True
        client.azure_endpoint = endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT") or None
        client.api_version = api_version or os.environ.get("OPENAI_API_VERSION") or None
        client._api_key = api_key if api_key is not None else os.environ.get("AZURE_OPENAI_API_KEY")
        client._azure_ad_token = azure_ad_token or os.environ.get("AZURE_OPENAI_AD_TOKEN") or None
        client._azure_ad_token_provider = azure_ad_token_provider
        client.azure_deployment = deployment
        client._url = BaseURL(None)
        return client

    @classmethod
    def from_openai(cls, client: SdkT, *, retry: RetryPolicy | None = None, provider: Provider | None = None) -> Self:
        """Wrap an SDK client the user already configured (any transport; Azure too). Its retries are switched off
        (``with_options(max_retries=0)``) so that ``retry`` is the only retry layer. ``provider`` is inferred
        from the SDK client's base URL (``AzureOpenAI``: azure) unless given."""
        import openai as _openai

        key = getattr(client, "api_key", None) or None
        base_url = str(getattr(client, "base_url", "")) or None
        is_azure = isinstance(client, _openai.AzureOpenAI | _openai.AsyncAzureOpenAI)
        wrapped = cls(api_key="", retry=retry, provider=provider or ("azure" if is_azure else infer_provider(base_url)))
        wrapped._api_key = key
        wrapped.base_url = base_url
        if is_azure:
            wrapped._azure_sdk = True
            wrapped.azure_endpoint = wrapped.base_url
        wrapped._sdk = client.with_options(max_retries=0)  # type: ignore[attr-defined]
        wrapped._owns_http = False
        return wrapped

    # --- the SDK client -------------------------------------------------------------------------------------

    @property
    def openai(self) -> SdkT:
        """The underlying SDK client (retries off). Built on first use."""
        with self._lock:
            if self._sdk is None:
                self._sdk = self._build_sdk()
            return self._sdk

    def _build_sdk(self) -> SdkT:
        import openai as _openai

        kwargs = self._sdk_kwargs()
        if self._http_client is None:
            self._http_client = self._new_http_client()
        kwargs["http_client"] = self._http_client
        plain, azure = self._sdk_classes()
        try:
            return (azure if self._azure_sdk else plain)(**kwargs)
        except _openai.OpenAIError as exc:
            raise map_openai_error(exc) from exc

    def _new_http_client(self) -> HttpT:
        """The HTTP client built when none was given (sync or async)."""
        raise NotImplementedError

    def _wire_transport(self, default: Callable[[], Any]) -> Any:
        """The transport for the HTTP client we build: the given one (or httpx's ``default()``), wrapped so that
        credential query parameters of the base URL are added on the wire only."""
        if not self._url.secret_query:
            return self._transport
        from ._transports import WireQueryTransport

        return WireQueryTransport(self._transport if self._transport is not None else default(), self._url.secret_query)

    def _wire_mounts(self, http: HttpT) -> HttpT:
        if self._url.secret_query:
            from ._transports import wrap_mounts

            wrap_mounts(http, self._url.secret_query)
        return http

    def _sdk_classes(self) -> tuple[Callable[..., SdkT], Callable[..., SdkT]]:
        """The SDK's (plain, Azure) client classes (sync or async)."""
        raise NotImplementedError

    def _http_timeout(self) -> httpx.Timeout:
        import httpx

        return httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))

    def _sdk_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_retries": 0, "timeout": self.timeout}
        headers = {**dict(self._url.headers), **self.default_headers}
        if headers:
            kwargs["default_headers"] = headers
        query = list(self._url.query)
        if self._url.secret_query and not self._owns_http:
            # a caller's own http_client: the parameters can only travel in the URL httpx builds (and logs)
            query += self._url.secret_query
        if query:
            kwargs["default_query"] = dict(query)
        if self._azure_sdk:
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
                    "No OpenAI API key: set OPENAI_API_KEY or pass api_key= to Client(). (For a local "
                    "OpenAI-compatible server pass base_url=; one that needs no key elsewhere takes "
                    "provider='compatible'; for Azure use Client.azure().)"
                )
        kwargs.update(api_key=api_key, base_url=self._url.url, organization=self.organization, project=self.project)
        return kwargs

    # --- errors ---------------------------------------------------------------------------------------------

    @property
    def _secrets(self) -> Secrets:
        """This client's own secrets: masked in the exceptions its calls raise."""
        return Secrets.of(self._api_key, self._azure_ad_token, *self._url.secrets)

    def _error(self, exc: BaseException) -> BaseException:
        """What to raise (``from exc``) for an exception from one attempt: the SDK's errors and httpx's transport
        errors become ours; with this client's secrets masked in it and in everything chained to it, the request
        objects' headers and URLs included."""
        secrets = self._secrets
        secrets.scrub_exception(exc)
        mapped = _transport_error(exc) or (map_openai_error(exc) if _is_sdk_error(exc) else exc)
        if mapped is not exc:
            secrets.scrub_exception(mapped)
        return mapped


def _is_sdk_error(exc: BaseException) -> bool:
    import openai as _openai

    return isinstance(exc, _openai.OpenAIError)


def _transport_error(exc: BaseException) -> FinetuneEmbedError | None:
    """Our error for an ``httpx`` / ``httpx2`` transport error raised outside the SDK's own handling (while a
    streamed body is read), or ``None``."""
    if type(exc).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore"):
        return None
    names = {c.__name__ for c in type(exc).__mro__}
    if "TimeoutException" in names or "TimeoutError" in names:
        return APITimeoutError("The request timed out while the response was read. - raise the timeout or retry.")
    if names & {"TransportError", "NetworkError", "ProtocolError"}:
        return APIConnectionError(
            f"The connection failed while the response was read: {type(exc).__name__}: {exc}. - check the network "
            "and base_url; the call is retried by the retry policy."
        )
    return None


class Client(_BaseClient["httpx.Client", "httpx.BaseTransport", "_sdk.OpenAI"]):
    """A synchronous client for OpenAI, Azure OpenAI or any OpenAI-compatible server.

    **Parameters:**

    * ``api_key`` - defaults to ``OPENAI_API_KEY``; only needed at the first call.
    * ``base_url`` - defaults to ``OPENAI_BASE_URL``; a proxy or gateway in front of OpenAI, or any
      OpenAI-compatible server.
    * ``organization``, ``project`` - default to ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID``.
    * ``provider`` - ``"openai"``, ``"azure"`` or ``"compatible"`` (default: ``FINETUNE_EMBED_PROVIDER``, else
      inferred from ``base_url``; see :attr:`provider`). It decides which catalog facts apply.
    * ``timeout`` - seconds per HTTP request.
    * ``retry`` - the :class:`RetryPolicy` for every call (the SDK's retries are off).
    * ``http_client`` / ``transport`` - an ``httpx.Client`` to send requests with, or an httpx transport for the
      client we build (the testing fake provides one).

    >>> client = Client(api_key="sk-...")           # doctest: +SKIP
    >>> client.jobs.list()                            # doctest: +SKIP
    """

    def _new_http_client(self) -> httpx.Client:
        import httpx

        transport = self._wire_transport(httpx.HTTPTransport)
        http = httpx.Client(transport=transport, timeout=self._http_timeout(), follow_redirects=True)
        return self._wire_mounts(http)

    def _sdk_classes(self) -> tuple[Callable[..., _sdk.OpenAI], Callable[..., _sdk.OpenAI]]:
        import openai as _openai

        return _openai.OpenAI, _openai.AzureOpenAI

    def request(self, op: Callable[[_sdk.OpenAI], T], *, description: str = "API call") -> T:
        """Run ``op(sdk_client)`` under the retry policy, translating SDK errors to ours."""
        sdk = self.openai

        def attempt() -> T:
            try:
                logger.debug("API request: %s", description)
                return op(sdk)
            except Exception as exc:
                error = self._error(exc)
                if error is exc:
                    raise
                raise error from exc

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


class AsyncClient(_BaseClient["httpx.AsyncClient", "httpx.AsyncBaseTransport", "_sdk.AsyncOpenAI"]):
    """The asyncio twin of :class:`Client` (same arguments; ``aclose()`` / ``async with``)."""

    def _new_http_client(self) -> httpx.AsyncClient:
        import httpx

        transport = self._wire_transport(httpx.AsyncHTTPTransport)
        http = httpx.AsyncClient(transport=transport, timeout=self._http_timeout(), follow_redirects=True)
        return self._wire_mounts(http)

    def _sdk_classes(self) -> tuple[Callable[..., _sdk.AsyncOpenAI], Callable[..., _sdk.AsyncOpenAI]]:
        import openai as _openai

        return _openai.AsyncOpenAI, _openai.AsyncAzureOpenAI

    async def request(self, op: Callable[[_sdk.AsyncOpenAI], Awaitable[T]], *, description: str = "API call") -> T:
        """Await ``op(sdk_client)`` under the retry policy, translating SDK errors to ours."""
        sdk = self.openai

        async def attempt() -> T:
            try:
                logger.debug("API request: %s", description)
                return await op(sdk)
            except Exception as exc:
                error = self._error(exc)
                if error is exc:
                    raise
                raise error from exc

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
