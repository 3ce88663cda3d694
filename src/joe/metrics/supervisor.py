"""The watchdog's child loop: run the daemon, restart it when it dies, give up loudly on a crash loop.

`Supervisor.run` starts the child command and watches it. When the child exits:

* code 0, or after a stop was asked (SIGTERM/SIGINT/SIGHUP forwarded to it): the supervisor returns its code
  (an orderly stop is intentional; nothing to restart);
* code 2 (usage) or 3 (refused for safety, e.g. another Joe holds the data folder): restarting cannot
  help, so it gives up at once (`GAVE_UP`);
* any other code or a signal (a crash, ``kill -9``, the OOM killer): it is restarted after a backoff
  (1 s doubling to `RestartPolicy.max_backoff_s`), unless `RestartPolicy.max_restarts` restarts already
  happened within `window_s` — a crash loop: it gives up, exit `GAVE_UP`.

Each exit, restart and the giving up is audited (``watchdog.child_exited``, ``watchdog.child_restarted``,
``watchdog.gave_up``) and sent to the alert channels (`on_event`), and the giving up is printed to stderr.
The child gets SIGTERM when the supervisor itself dies (`spawn_bound`), so a killed watchdog never
leaves an unsupervised daemon behind.
The daemon is crash-only (it reconciles with the broker first on every start), so a restart never sends
an order twice; open positions keep their broker-side stops meanwhile. `GAVE_UP` is listed in the
systemd unit's ``RestartPreventExitStatus`` so systemd does not turn a loop it gave up on into a slower
loop. The rule follows systemd's own ``StartLimitBurst`` / ``StartLimitIntervalSec``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

GAVE_UP = 4  # exit code: the child crash-looped (or cannot start); see RestartPreventExitStatus
NOT_RESTARTABLE = {2: "usage error", 3: "refused for safety"}  # joe.cli.exit_codes


@dataclass
class RestartPolicy:
    """At most `max_restarts` restarts within `window_s` seconds; the n-th consecutive restart waits
    `backoff_s * 2**(n-1)` seconds, at most `max_backoff_s` (reset after `window_s` without a crash)."""

    max_restarts: int = 5
    window_s: float = 600.0
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    restarts: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.window_s <= 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError(
                "restart policy: max_restarts >= 0, window_s > 0, backoff_s >= 0 and max_backoff_s >= 0"
            )

    def next_delay(self, now: float) -> float | None:
        """Seconds to wait before the next restart, or None: the budget of the window is spent."""
        while self.restarts and now - self.restarts[0] > self.window_s:
            self.restarts.popleft()
        if len(self.restarts) >= self.max_restarts:
            return None
        delay = min(self.backoff_s * 2 ** len(self.restarts), self.max_backoff_s)
        self.restarts.append(now + delay)
        return delay


class Child(Protocol):
    pid: int

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def wait(self) -> int: ...


def describe(code: int) -> str:
    """``exit 1`` or ``killed by SIGKILL`` (subprocess gives -N for a signal)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def spawn_bound(cmd: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start `cmd` bound to this process's life: Linux sends it SIGTERM when the supervisor dies
    (``PR_SET_PDEATHSIG``; a killed watchdog used to leave its daemon orphaned — unsupervised, holding
    the data folder's lock so the next watchdog's daemon was refused and it "gave up"). SIGTERM is the
    daemon's orderly stop (`joe.core.process.parent_death_binder`)."""
    import os

    from joe.core.process import parent_death_binder

    parent, bind = os.getpid(), parent_death_binder()  # prctl looked up here, not in the child
    # single-threaded here: safe between fork and exec
    return subprocess.Popen(list(cmd), preexec_fn=lambda: bind(parent))


class Supervisor:
    """Runs `cmd` until it stops for good (see the module docstring). `tick` runs every `poll_s` while a
    child lives (the systemd ping); `on_event(kind, payload)` audits and alerts; `spawn`, `monotonic`
    and `sleep` are injectable for tests."""

    def __init__(
        self,
        cmd: Sequence[str],
        policy: RestartPolicy,
        on_event: Callable[[str, dict[str, Any]], None],
        *,
        tick: Callable[[], None] = lambda: None,
        poll_s: float = 0.2,
        spawn: Callable[[Sequence[str]], Child] = lambda c: spawn_bound(c),
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cmd = list(cmd)
        self.policy = policy
        self.on_event = on_event
        self.tick = tick
        self.poll_s = poll_s
        self.spawn = spawn
        self.monotonic = monotonic
        self.sleep = sleep
        self.child: Child | None = None
        self.stopping = False
        self.starts = 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop for good: forward `sig` to the child; no restart follows (safe from a signal handler)."""
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(sig)

    def run(self) -> int:
        while True:
            self.child = self.spawn(self.cmd)
            self.starts += 1
            if self.starts > 1:
                self.on_event("watchdog.child_restarted", {"pid": self.child.pid, "start": self.starts})
            while self.child.poll() is None:
                self.tick()
                self.sleep(self.poll_s)
            code = self.child.wait()
            if code == 0 or self.stopping:
                return code
            how = describe(code)
            self.on_event("watchdog.child_exited", {"pid": self.child.pid, "code": code, "how": how})
            if code in NOT_RESTARTABLE:
                why = f"the daemon {how} ({NOT_RESTARTABLE[code]}): restarting cannot help"
                return self._give_up(why, refused=code == 3)
            delay = self.policy.next_delay(self.monotonic())
            if delay is None:
                p = self.policy
                return self._give_up(
                    f"the daemon died {p.max_restarts + 1} times within {p.window_s:.0f} s (last: {how}): "
                    "a crash loop"
                )
            self._pause(delay)
            if self.stopping:
                return code

    def _pause(self, seconds: float) -> None:
        end = self.monotonic() + seconds
        while not self.stopping and self.monotonic() < end:
            self.sleep(min(self.poll_s, max(0.0, end - self.monotonic())))

    def _give_up(self, why: str, *, refused: bool = False) -> int:
        """`refused` (exit 3): most often another Joe holds the data folder or the account — then Joe IS
        running, just not this daemon; saying "Joe is NOT running" would send the operator the wrong
        way (an orphaned daemon, a hand-run `joe run --once`)."""
        self.on_event("watchdog.gave_up", {"reason": why, "starts": self.starts})
        state = ("This watchdog's daemon is not running; another Joe may be (its refusal above names the "
                 "pid holding the data folder or account)") if refused else "Joe is NOT running"  # fmt: skip
        print(f"watchdog: GAVE UP: {why}. {state}; open positions keep their broker-side "
              "stops. Read `joe status` and the audit log, fix the cause, then start it again.",
              file=sys.stderr)  # fmt: skip
        return GAVE_UP
