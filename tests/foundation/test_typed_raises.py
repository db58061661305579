"""Every exception the library raises is a FinetuneEmbedError subclass (#11 item 9).

The test reads every module of ``finetune_embed/`` (AST, no execution of the raise), resolves the class of each
``raise X(...)`` / ``raise X`` / ``raise mod.X(...)`` statement the way Python would (module globals, imports made
inside functions, builtins) and fails for a class outside the FinetuneEmbedError tree, unless the raise is in the
small allowlist below: protocol requirements (``__next__`` ends with ``StopIteration``, a module ``__getattr__``
raises ``AttributeError``), abstract methods, and internal signals that the same module catches. Each entry says
why. A raise of a variable (``raise exc``) re-raises something already raised or built elsewhere and is skipped.
"""

from __future__ import annotations

import ast
import builtins
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from finetune_embed._exceptions import FinetuneEmbedError

PACKAGE = Path(__file__).resolve().parents[2] / "finetune_embed"

#: (module path relative to finetune_embed/, qualified name of the enclosing function, class raised): why.
ALLOWED_SITES: dict[tuple[str, str, str], str] = {
    ("__init__.py", "__getattr__", "AttributeError"): "a module __getattr__ must raise AttributeError",
    ("stores/__init__.py", "__getattr__", "AttributeError"): "a module __getattr__ must raise AttributeError",
    ("dataset/__init__.py", "__getattr__", "AttributeError"): "a module __getattr__ must raise AttributeError",
    ("_lines.py", "_BoundedText.__next__", "StopIteration"): "the iterator protocol",
    ("_client.py", "_BaseClient._new_http_client", "NotImplementedError"): "abstract: the sync/async clients define it",
    ("_client.py", "_BaseClient._sdk_classes", "NotImplementedError"): "abstract: the sync/async clients define it",
    ("embeddings/_tokens.py", "_SplitByCount.count_one", "NotImplementedError"): "abstract: every counter defines it",
    ("evaluate/_scorers.py", "Scorer.score", "NotImplementedError"): "abstract: a Scorer subclass defines score()",
    ("catalog.py", "ModelCatalog.update_from_dict", "TypeError"): "caught by the except below, re-raised typed",
    ("index/_storage.py", "_read_npy", "ValueError"): "caught by the except below, re-raised as IndexFileError",
    ("embeddings/_decode.py", "row_flags", "ValueError"): "internal invariant: every caller passes a 2-D array",
    ("embeddings/_job.py", "EmbedJob.iter_batches.pairs", "ValueError"): "internal invariant: counts are set first",
    ("testing/_transport.py", "_to_httpx", "httpx.ReadTimeout"): "the fake's injected timeout, as httpx raises it",
    ("testing/_transport.py", "_to_httpx", "httpx.RemoteProtocolError"): "the fake's injected disconnect, as httpx",
    ("dataset/_io.py", "_reject_constant", "ValueError"): "json parse_constant hook: its caller catches it",
    ("dataset/_stream.py", "_reject_constant", "ValueError"): "json parse_constant hook: its caller catches it",
    ("index/_manifest.py", "_no_constants", "ValueError"): "json parse_constant hook: its caller catches it",
    ("index/_manifest.py", "_no_duplicates", "ValueError"): "json object_pairs_hook: its caller catches it",
    ("index/_storage.py", "_no_constants", "ValueError"): "json parse_constant hook: its caller catches it",
    ("cli/_embed.py", "_get", "KeyError"): "a missing field: its caller turns it into a usage error",
    ("index/_index.py", "EmbeddingIndex.__getstate__", "TypeError"): "pickle's protocol for unpicklable objects",
}

#: Classes used only as internal signals: raised and caught inside the library, never reaching the caller.
INTERNAL_SIGNALS: dict[str, str] = {
    "RequestTooLarge": "embeddings: a request the server refused for size, split and retried by the run loop",
    "RateLimited": "embeddings/_run: a 429 handed from a worker to the scheduler",
    "TimedOut": "embeddings/_run: a timeout handed from a worker to the scheduler",
    "Aborted": "embeddings/_ratelimit: wakes waiters when a run stops",
    "PoolTooLarge": "index/_topk: switches to the chunked top-k path",
    "Unrepresentable": "index/pgvector/_sql: a filter value SQL cannot hold, re-raised as UnsupportedFilterError",
    "ApiError": "testing: the fake's HTTP error answer, turned into a response by FakeOpenAI.handle",
    "TrainingFileError": "testing: a training file the fake rejects, turned into a failed job",
}


@dataclass(frozen=True)
class Raise:
    path: str
    line: int
    function: str
    name: str
    cls: type[BaseException]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _local_imports(tree: ast.Module, module: str) -> dict[str, tuple[str, str | None]]:
    """Every name bound by an import anywhere in the file (functions import lazily): alias -> (module, attr)."""
    out: dict[str, tuple[str, str | None]] = {}
    package = module if module.endswith("__init__") else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join(anchor) + ("." + base if base else "")
            for alias in node.names:
                out[alias.asname or alias.name] = (base, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.name if alias.asname else alias.name.split(".")[0]
                out[alias.asname or bound] = (bound, None)
    return out


def _resolve(expr: ast.expr, namespace: dict[str, object], imports: dict[str, tuple[str, str | None]]) -> object:
    if isinstance(expr, ast.Name):
        if expr.id in namespace:
            return namespace[expr.id]
        if expr.id in imports:
            mod, attr = imports[expr.id]
            try:
                value = importlib.import_module(mod)
                return getattr(value, attr) if attr else value
            except (ImportError, AttributeError):
                return None
        return getattr(builtins, expr.id, None)
    if isinstance(expr, ast.Attribute):
        owner = _resolve(expr.value, namespace, imports)
        return getattr(owner, expr.attr, None) if owner is not None else None
    return None


class _Finder(ast.NodeVisitor):
    def __init__(self, rel: str, namespace: dict[str, object], imports: dict[str, tuple[str, str | None]]) -> None:
        self.rel = rel
        self.namespace = namespace
        self.imports = imports
        self.stack: list[str] = []
        self.found: list[Raise] = []

    def _scoped(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_ClassDef = _scoped
    visit_FunctionDef = _scoped
    visit_AsyncFunctionDef = _scoped

    def visit_Raise(self, node: ast.Raise) -> None:
        if node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            value = _resolve(target, self.namespace, self.imports)
            if isinstance(value, type) and issubclass(value, BaseException):
                name = target.id if isinstance(target, ast.Name) else ast.unparse(target)
                self.found.append(Raise(self.rel, node.lineno, ".".join(self.stack), name, value))
        self.generic_visit(node)


def every_raise() -> list[Raise]:
    found: list[Raise] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        # a __main__ module runs when imported: resolve its names from its imports alone
        namespace = {} if path.name == "__main__.py" else vars(importlib.import_module(module))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        finder = _Finder(path.relative_to(PACKAGE).as_posix(), dict(namespace), _local_imports(tree, module))
        finder.visit(tree)
        found.extend(finder.found)
    return found


RAISES = every_raise()


def _allowed(r: Raise) -> bool:
    if r.path.startswith("cli/") and r.cls.__module__.startswith("click."):
        return True  # the CLI's usage errors: click prints them as one line and exits 2 (or 1)
    return (r.path, r.function, r.name) in ALLOWED_SITES or r.cls.__name__ in INTERNAL_SIGNALS


def test_the_scan_sees_the_library() -> None:
    """The scan is not vacuous: it finds hundreds of raises, most of them typed."""
    typed = [r for r in RAISES if issubclass(r.cls, FinetuneEmbedError)]
    assert len(RAISES) > 300
    assert len(typed) > 0.8 * len(RAISES)
    assert any(r.name == "StopIteration" for r in RAISES)  # builtins are resolved


def test_every_raise_is_typed() -> None:
    untyped = [r for r in RAISES if not issubclass(r.cls, FinetuneEmbedError) and not _allowed(r)]
    assert not untyped, "raise a FinetuneEmbedError subclass (what/where/how to fix) instead of:\n" + "\n".join(
        f"  finetune_embed/{r.path}:{r.line} in {r.function or '<module>'}: {r.name}" for r in untyped
    )


@pytest.mark.parametrize("site", sorted(ALLOWED_SITES), ids=lambda s: f"{s[0]}:{s[1]}:{s[2]}")
def test_every_allowlisted_site_still_exists(site: tuple[str, str, str]) -> None:
    """A stale allowlist entry would silently allow a future raise at that place: each one must match a raise."""
    assert any((r.path, r.function, r.name) == site for r in RAISES), f"no such raise any more: {site}"


@pytest.mark.parametrize("name", sorted(INTERNAL_SIGNALS))
def test_internal_signals_are_raised_and_caught_in_the_library(name: str) -> None:
    raised = [r for r in RAISES if r.cls.__name__ == name]
    assert raised, f"{name} is never raised: drop it from INTERNAL_SIGNALS"
    assert not issubclass(raised[0].cls, FinetuneEmbedError)
    catchers = [
        path
        for path in PACKAGE.rglob("*.py")
        if f"except {name}" in (text := path.read_text(encoding="utf-8")) or f"{name})" in text or f"{name}," in text
    ]
    assert catchers, f"nothing in the library catches {name}"
