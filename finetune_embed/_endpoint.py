"""Where a client talks to: which provider a base URL belongs to.

``provider`` decides which facts of the model catalog apply (OpenAI's shutdown dates and its last day for new
fine-tuning jobs, Azure's own schedule, or nothing for a compatible server) and how embedding requests are sized
for unknown models. It is inferred from the URL when not given:

* no base URL, or an ``openai.com`` host                                  → ``"openai"``
* an Azure OpenAI host (``*.openai.azure.com``, ``*.cognitiveservices.azure.com``,
  ``*.services.ai.azure.com``)                                            → ``"azure"``
* a local server: ``localhost``, a loopback, private-network or link-local address, a single-label host name
  (``ollama``, ``vllm`` in a Compose network) or a local-only domain (``.local``, ``.internal``, ``.lan``,
  ``.localhost``, ``.home.arpa``)                                         → ``"compatible"``
* **any other URL stays ``"openai"``**: a corporate gateway, LiteLLM or Helicone in front of OpenAI keeps
  OpenAI's catalog, shutdown warnings and refusals. Say ``provider="compatible"`` for a remote server that is
  not OpenAI.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from ._exceptions import ConfigError

__all__ = [
    "PROVIDERS",
    "PROVIDER_ENV",
    "BaseURL",
    "Provider",
    "check_provider",
    "infer_provider",
    "is_local_host",
    "split_base_url",
]

Provider = Literal["openai", "azure", "compatible"]
PROVIDERS: tuple[Provider, ...] = get_args(Provider)
#: The environment variable that sets ``provider`` when no argument does (handy for the CLI).
PROVIDER_ENV = "FINETUNE_EMBED_PROVIDER"

OPENAI_HOST = "api.openai.com"
_AZURE_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def check_provider(value: object, *, where: str = "provider") -> Provider:
    """``value`` if it is one of ``openai``, ``azure``, ``compatible``; else a :class:`ConfigError`."""
    if value not in PROVIDERS:
        raise ConfigError(
            f"{where} must be one of {', '.join(repr(p) for p in PROVIDERS)}, got {value!r}. Use 'compatible' for "
            "a server that is not OpenAI (Ollama, vLLM, TEI, LM Studio, llama.cpp), 'openai' for OpenAI or a "
            "proxy in front of it, 'azure' for Azure OpenAI."
        )
    return value


def host_of(url: str) -> str | None:
    """The lower-case host name of ``url`` (a scheme-less ``host:port/v1`` is read as a host too)."""
    text = url.strip()
    if "://" not in text:
        text = "//" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    return host.lower().rstrip(".") if host else None


def is_local_host(host: str) -> bool:
    """Whether ``host`` names a machine on this computer or the local network (see the module docstring)."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a single-label name resolves only on a local network (a Compose service)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def infer_provider(base_url: str | None) -> Provider:
    """The provider a base URL belongs to (see the module docstring)."""
    if not base_url:
        return "openai"
    host = host_of(base_url)
    if host is None:
        return "openai"
    if host == "openai.com" or host.endswith(".openai.com"):
        return "openai"
    if host.endswith(_AZURE_SUFFIXES):
        return "azure"
    if is_local_host(host):
        return "compatible"
    return "openai"


def provider_from_env() -> Provider | None:
    """The provider named by ``FINETUNE_EMBED_PROVIDER``, or ``None`` when it is unset or empty."""
    value = os.environ.get(PROVIDER_ENV, "").strip().lower()
    return check_provider(value, where=PROVIDER_ENV) if value else None


# query parameters that carry credentials (``?api-key=``, ``?key=``, ``?token=``, ``?sig=``, ``?code=`` ...)
_SECRET_PARAM = re.compile(r"(?i)(key|token|secret|passw|pwd|auth|sig|credential|session|code)")


@dataclass(frozen=True)
class BaseURL:
    """A base URL taken apart so that no credential stays in the URL that is shown, logged or raised.

    ``url`` has neither user info nor query; ``query`` holds the plain query parameters (sent with every request,
    as the SDK's ``default_query``), ``secret_query`` the ones that carry credentials (added on the wire only, so
    httpx's request log and our exceptions never show them), and ``headers`` the ``Authorization: Basic`` header
    built from ``user:password@`` (what httpx itself would send for it).
    """

    url: str | None
    query: tuple[tuple[str, str], ...] = ()
    secret_query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    secrets: tuple[str, ...] = ()

    @property
    def shown(self) -> str | None:
        """The URL as repr and logs show it: plain query kept, every credential masked."""
        if self.url is None:
            return None
        params = [*self.query, *((k, "[redacted]") for k, _ in self.secret_query)]
        if not params:
            return self.url
        return self.url + "?" + "&".join(f"{k}={v}" for k, v in params)


def split_base_url(base_url: str | None) -> BaseURL:
    """Take the user info and the query out of ``base_url`` (see :class:`BaseURL`)."""
    if not base_url:
        return BaseURL(None)
    try:
        parts = urlsplit(base_url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return BaseURL(base_url)
    if not parts.scheme or host is None:
        return BaseURL(base_url)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    query: list[tuple[str, str]] = []
    secret_query: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        (secret_query if _SECRET_PARAM.search(name) else query).append((name, value))
    headers: list[tuple[str, str]] = []
    secrets = [value for _, value in secret_query]
    if parts.username is not None or parts.password is not None:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers.append(("Authorization", f"Basic {token}"))
        secrets += [password, token]
    url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return BaseURL(url, tuple(query), tuple(secret_query), tuple(headers), tuple(s for s in secrets if s))
