"""Which server a cached vector came from: the cache keys every row by the server as well as the model.

Two servers can serve the same model name with different vectors (a local ``nomic-embed-text`` behind Ollama and
behind llama.cpp's server, a gateway that routes a name elsewhere, :class:`~finetune_embed.testing.FakeOpenAI`'s
made-up vectors under OpenAI's names), so a vector is only reused for the server that made it. The cache's
``model`` column holds :func:`cache_model`: the model name alone for OpenAI's own API (so caches written before
servers were told apart stay valid for it), else ``"<namespace>|<model>"`` with the namespace from
:func:`cache_namespace`.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["LEGACY_NAMESPACE", "OPENAI_URLS", "cache_model", "cache_namespace"]

#: base URLs that mean OpenAI's own API (rows under the bare model name)
OPENAI_URLS = frozenset({"https://api.openai.com/v1", "https://api.openai.com"})
#: where the migration puts rows of models OpenAI does not serve, written before servers were told apart
LEGACY_NAMESPACE = "unknown-server"


def _normal(url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


def cache_namespace(client: object) -> str:
    """The server ``client`` talks to, as the cache's namespace: ``""`` for OpenAI's own API; the transport's
    ``cache_namespace`` where it has one (``FakeOpenAI``'s in-process transport: ``"fake:seed=0"``); else
    ``"<provider>:<base URL>"`` (Azure: its endpoint), lower-cased host, no trailing slash, no query."""
    transport = getattr(client, "_transport", None)
    marked = getattr(transport, "cache_namespace", None)
    if isinstance(marked, str) and marked:
        return marked
    provider = str(getattr(client, "provider", "openai"))
    where = getattr(client, "azure_endpoint", None) if provider == "azure" else None
    where = where or getattr(client, "base_url", None)
    if not where:
        return "" if provider == "openai" else f"{provider}:default"
    url = _normal(str(where))
    if provider == "openai" and url in OPENAI_URLS:
        return ""
    return f"{provider}:{url}"


def cache_model(client: object, model: str) -> str:
    """The cache's ``model`` value for ``model`` on ``client`` (see the module docstring)."""
    namespace = cache_namespace(client)
    return f"{namespace}|{model}" if namespace else model
