"""Ctrl-C (SIGINT) where Python's default would print a traceback: while the CLI starts, and while a sweep's
Dask cluster starts its worker processes. Imported first by `joe.cli.main`: it imports nothing heavy."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def quiet_while_starting() -> Callable[[], None]:
    """Until the returned function is called, Ctrl-C prints one line and exits 130 (no traceback of the
    import it landed in). Does nothing outside the main thread or when SIGINT is not Python's default."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return lambda: None

    def stop(signum: int, frame: FrameType | None) -> None:
        sys.stderr.write("joe: interrupted while starting; nothing was run\n")
        raise SystemExit(INTERRUPTED)

    signal.signal(signal.SIGINT, stop)

    def restore() -> None:
        if signal.getsignal(signal.SIGINT) is stop:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    return restore


@contextmanager
def interrupt_after() -> Iterator[None]:
    """Ctrl-C inside the block is acted on at its end: `KeyboardInterrupt` is raised there, once what the
    block started (a Dask cluster, its client) is on the caller's exit stack to be closed.

    SIGINT is blocked in this thread meanwhile, so the threads and the processes started in the block
    inherit the block: a worker process interrupted while it imports would print a traceback of its own
    (the terminal sends Ctrl-C to every process of its group), and a cluster interrupted half-built is
    closed at exit with an `AssertionError` traceback. Outside the main thread, or without
    `pthread_sigmask`, the block runs as it is; so it does when SIGINT is ignored (a job started in the
    background or under `nohup`, which asked for no Ctrl-C: the processes it starts inherit that)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or not hasattr(signal, "pthread_sigmask")
        or signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        yield
        return
    hits: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        hits.append(signum)

    previous = signal.signal(signal.SIGINT, remember)  # a Ctrl-C delivered to another thread lands here
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a pending one runs `remember` now
        signal.signal(signal.SIGINT, previous)
    if hits:
        raise KeyboardInterrupt
