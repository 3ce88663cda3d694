"""A folder's files read in two processes: the second half by a forked helper while this one reads the first.

Reading and checking a file (`joe.data.files.read_file`, then `drop_non_session_bars`) depends on the
file only, so the files of a large folder can be read by two processes. A backtest loads its data before
its analysis worker starts (`joe.backtest.feed`), with the second core idle: `joe.backtest.loading` asks
for 2 read processes (`read_processes`) and `FileSource` hands the second half of its files to a forked
helper (`ReadAhead`), which sends back the `LoadedFile`s it read without error. Every other file - the
first half, and any file the helper could not read, raised on or never sent - is read by `FileSource`
itself, with its own error handling: the source is the same as one read in one process
(tests/data/test_file_ahead.py). A run reads in one process (the default; no fork in a daemon).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joe.data.files import LoadedFile

__all__ = ["MIN_FILES", "ReadAhead", "read_processes"]

# Below this many files a fork costs more than the half it reads (~2 ms a file, ~20 ms a fork).
MIN_FILES = 32
# Seconds to wait for the helper's files once this process has read its half; then it reads them itself.
WAIT = 120.0

_processes: ContextVar[int] = ContextVar("joe_file_read_processes", default=1)


@contextlib.contextmanager
def read_processes(n: int) -> Iterator[None]:
    """Within the block, a `FileSource` opened in this context reads its files in `n` processes (1 or 2)."""
    token = _processes.set(n)
    try:
        yield
    finally:
        _processes.reset(token)


def _can_fork() -> bool:
    return "fork" in mp.get_all_start_methods() and not mp.current_process().daemon


def _read(
    conn: Connection, theirs: Connection, paths: Sequence[Path], read: Callable[[Path], LoadedFile]
) -> None:
    """The helper: the files it read without error, by path, in one message (then it exits).

    It closes its copy of the reading end first: with the book's process gone (SIGKILL, the OOM killer)
    a send must fail, not block forever on a pipe only the helper itself could read. It stops reading
    once its parent has changed (an orphan), and a signal (Ctrl-C) ends it like any process."""
    theirs.close()
    parent = os.getppid()
    done: dict[str, LoadedFile] = {}
    for p in paths:
        if os.getppid() != parent:
            return  # the book's process is gone: nobody will read the files
        try:
            done[str(p)] = read(p)
        except Exception:  # the book's process reads this file itself, and reports it
            continue
    with contextlib.suppress(Exception):  # the reader gave up, or the files do not pickle: read there
        conn.send_bytes(pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL))
    conn.close()


class ReadAhead:
    """The files `paths[k:]` read by a forked helper process with `read` (k: half of them), from `start()`
    on, when this context asked for 2 read processes (`read_processes`), there are at least `MIN_FILES`
    files and this process may fork; else nothing (every `take` is None). `take(path)` returns the
    helper's `LoadedFile` for `path`, or None: read it here. `close()` ends the helper (use as a context
    manager)."""

    def __init__(self, paths: Sequence[Path], read: Callable[[Path], LoadedFile]) -> None:
        self._got: dict[str, LoadedFile] | None = None
        self._proc: Any = None
        self._conn: Connection | None = None
        self.theirs: frozenset[str] = frozenset()
        self._paths, self._read = list(paths), read
        self._wanted = _processes.get() >= 2 and len(paths) >= MIN_FILES and _can_fork()

    def start(self) -> None:
        """Fork the helper (once; called after this process has read its first file, so that the
        helper inherits what a first read sets up - lazy imports, calendars: ~0.3 s - instead of doing it
        again)."""
        if not self._wanted:
            return
        self._wanted = False
        theirs = self._paths[len(self._paths) // 2 :]
        ctx = mp.get_context("fork")
        recv, send = ctx.Pipe(duplex=False)
        try:
            proc = ctx.Process(
                target=_read, args=(send, recv, theirs, self._read), name="joe-read-ahead", daemon=True
            )
            proc.start()
        except OSError:  # no process to spare: read everything here
            recv.close()
            return
        finally:
            send.close()
        self._proc, self._conn = proc, recv
        self.theirs = frozenset(map(str, theirs))

    def take(self, path: Path) -> LoadedFile | None:
        """The helper's reading of `path` (None: not one of its files, or it did not send it)."""
        key = str(path)
        if key not in self.theirs:
            return None
        if self._got is None:
            self._got = self._receive()
        return self._got.pop(key, None)

    def _receive(self) -> dict[str, LoadedFile]:
        conn, self._conn = self._conn, None
        if conn is None:
            return {}
        clean = False
        try:
            if conn.poll(WAIT):
                got = pickle.loads(conn.recv_bytes())
                if isinstance(got, dict):
                    clean = True
                    return got
        except Exception:  # the helper died or sent garbage: the files are read here
            pass
        finally:
            conn.close()
            self._stop(clean)
        return {}

    def _stop(self, clean: bool = False) -> None:
        """Reap the helper: after a clean message it is exiting; else (a timeout, garbage, Ctrl-C here) it
        is ended at once, not waited for."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if not clean:
            proc.terminate()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._stop()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
