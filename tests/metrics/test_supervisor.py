"""The watchdog's child loop without processes: restart after a crash with a doubling backoff, give up
on a crash loop or a cause a restart cannot fix, never restart after an orderly or asked-for stop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.metrics.supervisor import GAVE_UP, RestartPolicy, Supervisor, describe


class FakeChild:
    def __init__(self, pid: int, code: int, lives: int, clock: Clock) -> None:
        self.pid, self.code, self.lives, self.clock = pid, code, lives, clock
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return None if self.lives > 0 and not self.signals else self.code if not self.signals else 0

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)

    def wait(self) -> int:
        return self.code if not self.signals else 0


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def harness(
    codes: Sequence[int], policy: RestartPolicy, lives: int = 3
) -> tuple[Supervisor, list[Any], Clock]:
    clock = Clock()
    events: list[Any] = []
    children: list[FakeChild] = []

    def spawn(_cmd: Sequence[str]) -> FakeChild:
        child = FakeChild(100 + len(children), codes[min(len(children), len(codes) - 1)], lives, clock)
        children.append(child)
        return child

    def tick() -> None:  # each tick a child lives one poll less
        if children:
            children[-1].lives -= 1

    sup = Supervisor(["joe", "daemon"], policy, lambda k, p: events.append((k, p)), tick=tick, poll_s=1.0,
                     spawn=spawn, monotonic=clock, sleep=clock.sleep)  # fmt: skip
    return sup, events, clock


def kinds(events: list[Any]) -> list[str]:
    return [k for k, _p in events]


def test_a_killed_child_is_restarted_after_a_backoff_and_an_orderly_exit_ends_it() -> None:
    sup, events, _clock = harness([-9, 1, 0], RestartPolicy(max_restarts=5, backoff_s=2.0))
    assert sup.run() == 0
    assert kinds(events) == ["watchdog.child_exited", "watchdog.child_restarted",
                             "watchdog.child_exited", "watchdog.child_restarted"]  # fmt: skip
    assert events[0][1] == {"pid": 100, "code": -9, "how": "killed by SIGKILL"}
    assert events[1][1] == {"pid": 101, "start": 2}
    assert sup.starts == 3


def test_a_crash_loop_gives_up_after_the_window_budget() -> None:
    policy = RestartPolicy(max_restarts=3, window_s=600, backoff_s=1.0, max_backoff_s=3.0)
    sup, events, clock = harness([1], policy, lives=1)
    assert sup.run() == GAVE_UP
    assert kinds(events).count("watchdog.child_restarted") == 3
    assert kinds(events)[-1] == "watchdog.gave_up"
    assert "died 4 times within 600 s (last: exit 1)" in events[-1][1]["reason"]
    assert sum(clock.slept) >= 1 + 2 + 3  # backoffs 1, 2, then capped at 3


def test_crashes_spread_wider_than_the_window_are_restarted_forever() -> None:
    policy = RestartPolicy(max_restarts=2, window_s=10, backoff_s=0.5)
    sup, events, _clock = harness([*[1] * 8, 0], policy, lives=20)  # each child lives 20 s > window
    assert sup.run() == 0
    assert kinds(events).count("watchdog.child_restarted") == 8 and "watchdog.gave_up" not in kinds(events)


def test_usage_and_refusal_exits_give_up_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    for code, why in ((2, "usage error"), (3, "refused for safety")):
        sup, events, _clock = harness([code], RestartPolicy())
        assert sup.run() == GAVE_UP
        assert kinds(events) == ["watchdog.child_exited", "watchdog.gave_up"]
        assert why in events[-1][1]["reason"]
        err = capsys.readouterr().err
        # Refused (exit 3) is mostly "another Joe is running": never claim that Joe is not running.
        assert ("Joe is NOT running" in err) is (code == 2), err
        assert ("another Joe may be" in err) is (code == 3), err


def test_a_stop_asked_of_the_watchdog_is_forwarded_and_never_restarted() -> None:
    sup, events, _clock = harness([1], RestartPolicy(), lives=100)
    sup.tick = lambda: sup.stop(15)
    assert sup.run() == 0
    assert sup.starts == 1 and events == []
    assert sup.child is not None and sup.child.signals == [15]  # type: ignore[attr-defined]


def test_describe() -> None:
    assert describe(1) == "exit 1" and describe(-15) == "killed by SIGTERM"
    assert describe(-99) == "killed by signal 99"


@given(
    max_restarts=st.integers(0, 6),
    window=st.floats(1, 100),
    gaps=st.lists(st.floats(0, 50), min_size=1, max_size=40),
)
def test_policy_never_allows_more_restarts_than_the_budget_in_any_window(
    max_restarts: int, window: float, gaps: list[float]
) -> None:
    policy = RestartPolicy(max_restarts=max_restarts, window_s=window, backoff_s=0.1, max_backoff_s=1.0)
    now, granted = 0.0, []
    for gap in gaps:
        now += gap
        delay = policy.next_delay(now)
        if delay is not None:
            assert 0 <= delay <= 1.0
            granted.append(now + delay)
            now += delay
    for t in granted:  # restarts at most max_restarts inside any window ending at a restart
        assert sum(1 for u in granted if t - window <= u <= t) <= max_restarts
