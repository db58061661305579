"""#11 items 6 and 13: concurrent readers with one writer; parallelism is an explicit per-call knob."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from finetune_embed import _exceptions as exc
from finetune_embed.index import EmbeddingIndex
from finetune_embed.index import _index as index_module
from finetune_embed.index._rwlock import ReadWriteLock

D = 16


def _vector(item_id: str) -> np.ndarray:
    """Every id always has the same vector, so any hit can be checked on its own."""
    seed = int(item_id.split("-")[1])
    return np.random.default_rng(seed).standard_normal(D).astype(np.float32)


def _ids(a: int, b: int) -> list[str]:
    return [f"id-{i}" for i in range(a, b)]


def _add(index: EmbeddingIndex, ids: list[str]) -> None:
    index.add(ids, np.stack([_vector(i) for i in ids]), [{"id": i, "even": int(i.split("-")[1]) % 2 == 0}
                                                          for i in ids])


@pytest.mark.parametrize("kind", ["float32", "int8", "float16"])
def test_eight_readers_and_one_writer(kind: str) -> None:
    """The probe saw raw IndexError / ValueError and hits with id '' while another thread wrote."""
    index = EmbeddingIndex(D, dtype=kind)
    _add(index, _ids(0, 3000))
    errors: list[BaseException] = []
    checked = [0]
    stop = threading.Event()
    queries = np.random.default_rng(7).standard_normal((8, D)).astype(np.float32)

    def check(q: np.ndarray, hits: Any) -> None:
        assert all(isinstance(i, str) and i.startswith("id-") for i in hits.ids), hits.ids
        assert len(hits) == 10
        assert np.all(np.diff(hits.scores) <= 1e-6)
        qn = q / np.linalg.norm(q)
        for i, score, meta in zip(hits.ids, hits.scores, hits.metadata, strict=True):
            v = _vector(i)
            assert abs(float(qn @ (v / np.linalg.norm(v))) - score) < 2e-3  # the id's own vector, not another's
            assert meta["id"] == i

    def reader(r: int) -> None:
        rng = np.random.default_rng(r)
        try:
            while not stop.is_set():
                q = queries[r]
                check(q, index.search(q, k=10))
                check(q, index.search(q, k=10, where={"even": True}, threads=2))
                batch = index.search(queries[:3], k=10)
                for j in range(3):
                    check(queries[j], batch[j])
                item = f"id-{int(rng.integers(0, 6000))}"
                try:
                    got = index.get(item)
                    assert got.metadata["id"] == item
                    check(got.vector, index.search_by_id(item, k=10, exclude_self=False))
                except exc.UnknownIdError:
                    pass  # deleted by the writer meanwhile: a typed, expected answer
                if checked[0] % 10 == 0:
                    frame = index.to_pandas()  # one call: ids, vectors and metadata of the same moment
                    assert list(frame["id"]) == list(frame["metadata.id"])
                checked[0] += 1
        except BaseException as e:
            errors.append(e)

    def writer() -> None:
        try:
            for step in range(30):
                _add(index, _ids(3000 + 100 * step, 3100 + 100 * step))
                index.delete(_ids(50 * step, 50 * step + 40))  # compaction happens along the way
                upsert = _ids(2000 + step, 2001 + step)
                index.upsert(upsert, np.stack([_vector(i) for i in upsert]), [{"id": i} for i in upsert])
        except BaseException as e:
            errors.append(e)

    readers = [threading.Thread(target=reader, args=(r,)) for r in range(8)]
    for t in readers:
        t.start()
    time.sleep(0.05)
    w = threading.Thread(target=writer)
    w.start()
    w.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == [], repr(errors[0])
    assert checked[0] >= 8


def test_the_lock_is_reentrant_and_refuses_a_write_inside_a_read() -> None:
    lock = ReadWriteLock()
    with lock.read(), lock.read():
        pass
    with lock.write(), lock.read(), lock.write():
        pass
    index = EmbeddingIndex(2)
    index.add(["a", "b"], [[1, 0], [0, 1]])

    def sneaky(meta: object) -> bool:
        index.add(["c"], [[1, 1]])
        return True

    with pytest.raises(exc.ConfigError, match="cannot be changed while this thread is reading"):
        index.search([1, 0], where=sneaky)
    assert len(index) == 2
    index.add(["c"], [[1, 1]])  # the lock was released


def test_a_waiting_writer_holds_back_new_readers() -> None:
    lock = ReadWriteLock()
    order: list[str] = []
    first_reading = threading.Event()
    release = threading.Event()

    def long_reader() -> None:
        with lock.read():
            first_reading.set()
            release.wait()
            order.append("reader 1 done")

    def writer() -> None:
        with lock.write():
            order.append("writer")

    def late_reader() -> None:
        with lock.read():
            order.append("reader 2")

    t1 = threading.Thread(target=long_reader)
    t1.start()
    first_reading.wait()
    t2 = threading.Thread(target=writer)
    t2.start()
    while not lock._waiting:
        time.sleep(0.001)
    t3 = threading.Thread(target=late_reader)
    t3.start()
    time.sleep(0.05)
    release.set()
    for t in (t1, t2, t3):
        t.join()
    assert order == ["reader 1 done", "writer", "reader 2"]


@pytest.mark.parametrize("kind", ["float32", "float16", "int8"])
def test_threads_is_a_per_call_knob_and_no_thread_outlives_the_call(kind: str) -> None:
    assert not hasattr(index_module, "_POOL")  # no module-global pool any more
    rng = np.random.default_rng(0)
    index = EmbeddingIndex(32, dtype=kind)
    index.add([str(i) for i in range(20_000)], rng.standard_normal((20_000, 32)))
    queries = rng.standard_normal((2, 32))
    before = threading.active_count()
    one = index.search(queries, k=7, threads=1)
    four = index.search(queries, k=7, threads=4)
    default = index.search(queries, k=7)
    assert one.ids == four.ids == default.ids
    assert threading.active_count() == before
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(exc.ConfigError, match="threads must be a positive integer"):
            index.search(queries[0], threads=bad)  # type: ignore[arg-type]


def test_the_default_thread_count_is_the_cpus_the_process_may_use() -> None:
    import os

    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert index_module.available_cpus() == expected


@pytest.mark.parametrize("kind", ["float32", "float16", "int8"])
@pytest.mark.parametrize("nq", [4, 64])
def test_batches_give_the_same_results_bit_for_bit_for_any_threads(
    kind: str, nq: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#16: a few queries (the row kernel) split the rows across the call's threads, more queries (BLAS) widen
    int8 / float16 blocks on them; the answer (ids, scores, order) is exactly the one of a single-threaded
    search, over many blocks and segments, with exclusions and filters."""
    rng = np.random.default_rng(3)
    index = EmbeddingIndex(24, dtype=kind)
    for a in range(0, 40_000, 15_000):  # three segments: blocks cross segment boundaries
        index.add(_ids(a, min(40_000, a + 15_000)), rng.standard_normal((min(40_000, a + 15_000) - a, 24)),
                  [{"n": i} for i in range(a, min(40_000, a + 15_000))])
    index.delete(_ids(100, 130))
    queries = rng.standard_normal((nq, 24))
    helped = [0]
    real_rows = index_module._Workers.rows

    def recording(self: Any, work: Any, n: int) -> None:
        def traced(a: int, b: int) -> object:
            if threading.current_thread().name.startswith("finetune-embed-search"):
                helped[0] += 1
            return work(a, b)

        real_rows(self, traced, n)

    monkeypatch.setattr(index_module._Workers, "rows", recording)
    for options in ({}, {"exclude": _ids(5000, 5100)}, {"where": {"n": {"$gte": 1000}}}):
        one = index.search(queries, k=9, threads=1, **options)  # type: ignore[arg-type]
        assert helped[0] == 0
        for threads in (2, 3):
            many = index.search(queries, k=9, threads=threads, **options)  # type: ignore[arg-type]
            assert [m.ids for m in many] == [m.ids for m in one]
            for a, b in zip(many, one, strict=True):
                assert a.scores.tobytes() == b.scores.tobytes()
        if nq <= index_module._ROW_QUERIES or kind != "float32":
            assert helped[0] > 0  # a helper thread did part of the work
        helped[0] = 0


@pytest.mark.parametrize("kind", ["float32", "float16", "int8"])
def test_one_query_split_across_threads_gives_the_same_results_bit_for_bit(kind: str) -> None:
    """#16: one query is scored by einsum over row ranges split across the call's threads; how the rows are
    split never changes a score."""
    rng = np.random.default_rng(5)
    index = EmbeddingIndex(40, dtype=kind)
    index.add(_ids(0, 30_000), rng.standard_normal((30_000, 40)))
    for q in rng.standard_normal((3, 40)):
        one = index.search(q, k=12, threads=1)
        for threads in (2, 3, 7):
            many = index.search(q, k=12, threads=threads)
            assert many.ids == one.ids
            assert many.scores.tobytes() == one.scores.tobytes()


def test_four_queries_over_long_rows_give_the_same_bits_for_any_threads() -> None:
    """#16: 4 queries over rows of d >= 768 are scored by one small BLAS product per tile (at fixed offsets
    whatever the threads): the answer is the single-threaded one bit for bit (segments and a ragged last tile
    included), and it is the exact top-k."""
    rng = np.random.default_rng(11)
    d = 1024
    index = EmbeddingIndex(d)
    data = rng.standard_normal((21_001, d)).astype(np.float32)
    index.add(_ids(0, 12_000), data[:12_000])
    index.add(_ids(12_000, 21_001), data[12_000:])
    queries = rng.standard_normal((4, d)).astype(np.float32)
    one = index.search(queries, k=7, threads=1)
    for threads in (2, 3, 5):
        many = index.search(queries, k=7, threads=threads)
        for a, b in zip(many, one, strict=True):
            assert a.ids == b.ids
            assert a.scores.tobytes() == b.scores.tobytes()
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    for q, m in zip(queries, one, strict=True):
        exact = unit.astype(np.float64) @ (q / np.linalg.norm(q)).astype(np.float64)
        assert m.ids == [f"id-{i}" for i in np.argsort(-exact, kind="stable")[:7]]
