"""Vector-store adapters: the :class:`~finetune_embed.index.VectorIndex` API on external engines.

Each adapter needs its engine's client, an optional extra, and is imported on first use:

- :class:`RedisIndex` - Redis with RediSearch, one server or a Redis Cluster (``pip install "finetune-embed[redis]"``).

See docs/vector-stores.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._exceptions import MissingDependencyError

if TYPE_CHECKING:
    from ._redis import RedisIndex

__all__ = ["RedisIndex"]

_LAZY = {"RedisIndex": ("._redis", "redis", "redis")}  # name -> (module, package, extra)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, package, extra = _LAZY[name]
    try:
        loaded = importlib.import_module(module, __name__)
    except ImportError as exc:
        raise MissingDependencyError(
            f"finetune_embed.stores.{name} needs the {package!r} package: pip install 'finetune-embed[{extra}]' "
            f"({exc}).",
            package=package,
            extra=extra,
        ) from exc
    value = getattr(loaded, name)
    globals()[name] = value
    return value
