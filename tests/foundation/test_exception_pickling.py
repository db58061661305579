"""Every exception class of the tree pickles and unpickles with its attributes: they cross process pools
(parallel validation, ``concurrent.futures``), and a class whose ``__init__`` takes keyword-only arguments breaks
``BaseException``'s default pickling (``cls(*args)``)."""

from __future__ import annotations

import concurrent.futures
import inspect
import multiprocessing
import pickle
from typing import Any

import pytest

import finetune_embed
from finetune_embed import _exceptions
from finetune_embed._exceptions import FinetuneEmbedError


def exception_classes() -> list[type[FinetuneEmbedError]]:
    """Every class derived from FinetuneEmbedError that the package defines (public or not)."""
    seen: set[type[FinetuneEmbedError]] = set()
    todo: list[type[FinetuneEmbedError]] = [FinetuneEmbedError]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo.extend(cls.__subclasses__())
    for name in _exceptions.__all__:
        value = getattr(_exceptions, name)
        if inspect.isclass(value) and issubclass(value, FinetuneEmbedError):
            seen.add(value)
    return sorted((c for c in seen if c.__module__.startswith("finetune_embed")), key=lambda c: c.__qualname__)


def sample(name: str, annotation: Any) -> Any:
    """A value for a keyword argument, chosen from its annotation (as a string: the modules use postponed ones)."""
    text = str(annotation)
    if name == "headers":
        return {"x-request-id": "req_1"}
    if "list" in text or "Sequence" in text:
        return ["a", "b"] if "str" in text else [1, 2]
    if "dict" in text or "Mapping" in text:
        return {"k": "v"}
    if "bool" in text:
        return True
    if "int" in text:
        return 7
    if "float" in text:
        return 1.5
    return f"{name}-value"


def build(cls: type[FinetuneEmbedError]) -> FinetuneEmbedError:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            args.append(f"{cls.__name__} happened at {p.name}")
        else:
            kwargs[p.name] = sample(p.name, p.annotation)
    return cls(*args, **kwargs)


CLASSES = exception_classes()


def test_the_whole_tree_is_covered() -> None:
    names = {c.__name__ for c in CLASSES}
    exported = {n for n in finetune_embed.__all__ if n.endswith("Error")}
    assert exported <= names
    assert len(CLASSES) >= 45


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
def test_pickles_with_its_attributes(cls: type[FinetuneEmbedError]) -> None:
    exc = build(cls)
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        again = pickle.loads(pickle.dumps(exc, protocol=protocol))
        assert type(again) is cls
        assert str(again) == str(exc)
        assert repr(again) == repr(exc)
        assert again.args == exc.args
        assert vars(again) == vars(exc)
        assert again.docs == exc.docs
        if isinstance(exc, OSError):
            assert isinstance(again, OSError)
            assert (again.errno, again.strerror, again.filename) == (exc.errno, exc.strerror, exc.filename)


def _raise(cls_name: str) -> None:
    cls = next(c for c in exception_classes() if c.__qualname__ == cls_name)
    raise build(cls)


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("cls_name", ["DatasetFormatError", "FileAccessError", "JobFailedError", "UnknownIdError"])
def test_crosses_a_process_pool(cls_name: str) -> None:
    """Raised in a worker process, the same exception (class, message, attributes) arrives in the parent."""
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    expected = build(next(c for c in CLASSES if c.__qualname__ == cls_name))
    with (
        concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool,
        pytest.raises(type(expected)) as info,
    ):
        pool.submit(_raise, cls_name).result()
    assert str(info.value) == str(expected)
    assert vars(info.value) == vars(expected)
