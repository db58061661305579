"""The I/O-free parts of following a job: backoff schedule, event de-duplication over pages, progress."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finetune_embed.finetuning import PollBackoff
from finetune_embed.finetuning._polling import (
    EventTracker,
    JobProgress,
    SleepClock,
    is_terminal,
    next_poll_delay,
    status_of,
)


@dataclass
class Ev:
    id: str
    created_at: int
    message: str = ""
    data: Any = None
    type: str = "message"


def test_backoff_goes_from_a_few_seconds_to_a_minute() -> None:
    backoff = PollBackoff()
    delays = [backoff.next_delay() for _ in range(12)]
    assert delays[0] == 5.0
    assert delays[:4] == [5.0, 7.5, 11.25, 16.875]
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert delays[-1] == 60.0
    assert delays.index(60.0) == 7
    backoff.reset()
    assert backoff.next_delay() == 5.0


def test_backoff_fixed_interval() -> None:
    backoff = PollBackoff(2.0, 2.0)
    assert [backoff.next_delay() for _ in range(3)] == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(("initial", "maximum"), [(0, 60), (-1, 60), (10, 5), (float("inf"), float("inf"))])
def test_backoff_rejects_bad_intervals(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        PollBackoff(initial, maximum)


def test_sleep_clock_counts_fake_sleeps() -> None:
    clock = SleepClock(monotonic=lambda: 100.0)
    clock.add_sleep(5)
    clock.add_sleep(7.5)
    assert clock.elapsed() == 12.5
    ticks = iter([0.0, 30.0])
    real = SleepClock(monotonic=lambda: next(ticks))
    real.add_sleep(1)
    assert real.elapsed() == 30.0


def test_next_poll_delay_stops_at_the_timeout() -> None:
    backoff, clock = PollBackoff(5.0, 60.0), SleepClock(monotonic=lambda: 0.0)
    delays = [next_poll_delay(backoff, clock, 20, TimeoutError) for _ in range(3)]
    assert delays == [5.0, 7.5, 7.5]  # the third cut short: 20 s in all
    assert clock.elapsed() == 20
    with pytest.raises(TimeoutError, match=r"^20$"):
        next_poll_delay(backoff, clock, 20, lambda timeout: TimeoutError(f"{timeout:g}"))
    unlimited = PollBackoff(5.0, 60.0)
    assert [next_poll_delay(unlimited, clock, None, TimeoutError) for _ in range(2)] == [5.0, 7.5]


def test_status_of_is_lenient() -> None:
    assert status_of(Ev("x", 1)) == "unknown"
    assert status_of({"status": "paused"}) == "paused"
    assert not is_terminal("paused")
    assert not is_terminal("some_new_status")
    assert all(is_terminal(s) for s in ("succeeded", "failed", "cancelled"))


def _pages(events_newest_first: list[Ev], page_size: int) -> list[list[Ev]]:
    return [events_newest_first[i : i + page_size] for i in range(0, len(events_newest_first), page_size)]


def _fetch_new(tracker: EventTracker, server: list[Ev], page_size: int) -> list[Ev]:
    """What the managers do: page from the newest until a seen event (or the end), then commit."""
    collected: list[Ev] = []
    newest_first = list(reversed(server))
    for page in _pages(newest_first, page_size):
        fresh, stop = tracker.scan(page)
        collected.extend(fresh)
        if stop:
            break
    return tracker.commit(collected)


def test_tracker_yields_each_event_once_in_order_across_pages() -> None:
    tracker = EventTracker()
    server: list[Ev] = [Ev(f"e{i}", 1000 + i // 3) for i in range(7)]  # equal timestamps in threes
    first = _fetch_new(tracker, server, page_size=3)
    assert [e.id for e in first] == [f"e{i}" for i in range(7)]
    assert _fetch_new(tracker, server, page_size=3) == []
    server += [Ev(f"e{i}", 1003 + i // 3) for i in range(7, 12)]
    second = _fetch_new(tracker, server, page_size=2)
    assert [e.id for e in second] == [f"e{i}" for i in range(7, 12)]
    assert len(tracker) == 12


def test_tracker_stops_paging_at_the_first_seen_event() -> None:
    tracker = EventTracker()
    old = [Ev(f"o{i}", 10 + i) for i in range(5)]
    tracker.commit(list(reversed(old)))
    page = [Ev("n2", 20), Ev("n1", 19), Ev("o4", 14), Ev("o3", 13)]
    fresh, stop = tracker.scan(page)
    assert [e.id for e in fresh] == ["n2", "n1"]
    assert stop


def test_tracker_handles_oldest_first_servers() -> None:
    tracker = EventTracker()
    page = [Ev("a", 1), Ev("b", 2), Ev("c", 3)]
    fresh, stop = tracker.scan(page)
    assert not stop
    assert [e.id for e in tracker.commit(fresh)] == ["a", "b", "c"]
    fresh, stop = tracker.scan([Ev("a", 1), Ev("b", 2), Ev("c", 3), Ev("d", 4)])
    assert not stop  # new events come last on such a server: never stop early
    assert [e.id for e in tracker.commit(fresh)] == ["d"]


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.integers(min_value=0, max_value=25), min_size=1, max_size=8),
    page_size=st.integers(min_value=1, max_value=7),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_tracker_property_every_event_once_in_order(batches: list[int], page_size: int, seed: int) -> None:
    rng = random.Random(seed)
    server: list[Ev] = []
    tracker = EventTracker()
    seen: list[str] = []
    t = 0
    for n in batches:
        for _ in range(n):
            t += rng.choice([0, 0, 1, 2])  # many equal timestamps
            server.append(Ev(f"e{len(server)}", t))
        seen += [e.id for e in _fetch_new(tracker, server, page_size)]
    assert seen == [e.id for e in server]


def test_progress_from_metrics_event_data() -> None:
    state = JobProgress()
    state.update_from_job({"status": "running"})
    state.update_from_event(
        Ev("m", 1, "Step 40/100: training loss=0.53", {"step": 40, "total_steps": 100, "train_loss": 0.532}, "metrics")
    )
    assert (state.step, state.total_steps, state.train_loss) == (40, 100, 0.532)
    assert state.describe() == "running, step 40/100, train loss 0.532"
    assert state.postfix() == {"status": "running", "loss": "0.532"}


def test_progress_from_message_only() -> None:
    state = JobProgress(status="running")
    state.update_from_event(Ev("m", 1, "Step 7/20: training loss=1.25, validation loss=1.5"))
    assert (state.step, state.total_steps, state.train_loss, state.valid_loss) == (7, 20, 1.25, 1.5)
    state.update_from_event(Ev("m", 2, "Fine-tuning job started"))
    assert state.step == 7
