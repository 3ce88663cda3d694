"""Single instance: one Joe process per data folder (and per live account).

Two ``joe run --once`` on one data folder used to corrupt the store (``position 1 is already
closed``) and leave a run row ``running`` forever. `InstanceLock` takes an exclusive ``flock`` on
``<data dir>/joe.lock`` for the life of the process and writes its pid there; a second process gets
`AlreadyRunning` naming that pid (the CLI exits 3). The kernel drops the lock when the process
dies, so a crash never leaves a stale lock behind. `account_lock_path` gives the per-account lock
for live/shadow (one process per broker account, whatever its data folder).
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import time
from pathlib import Path
from types import TracebackType

LOCK_NAME = "joe.lock"
# Set by a lock holder (the daemon) for the `joe run --once` it starts itself: the child runs under
# its parent's lock instead of being refused by it.
PARENT_ENV = "JOE_LOCK_PARENT"
# The lock's descriptor, passed to that child (`child_fds`): the child holds the very flock (one open
# file description), so it stays locked while an orphaned child runs after its daemon was SIGKILLed.
FD_ENV = "JOE_LOCK_FD"
_HELD: dict[Path, int] = {}  # this process's held locks: path → fd
# How long a refused process waits for the holder's pid to appear (50 × 10 ms).
PID_WAIT_TRIES = 50
PID_WAIT_S = 0.01


class AlreadyRunning(RuntimeError):
    """Another process holds the lock; `pid` is the holder's (None if it could not be read)."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"another Joe is running ({who}) on {path.parent}; wait for it or stop it")


def account_lock_path(broker: str, account: str) -> Path:
    """The lock for one broker account, shared by every data folder on this machine."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{broker}-{account}")
    return Path(tempfile.gettempdir()) / "joe-locks" / f"{safe}.lock"


class InstanceLock:
    """An exclusive, non-blocking process lock on `path` (use as a context manager or acquire/release)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @classmethod
    def for_data_dir(cls, data_dir: Path | str) -> InstanceLock:
        return cls(Path(data_dir) / LOCK_NAME)

    def acquire(self) -> InstanceLock:
        """Take the lock or raise `AlreadyRunning`."""
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        # The holder writes its pid just after taking the lock and clears it just before letting go:
        # an empty file while the lock is held is one of those instants, so look again briefly (the
        # refusal should name the pid; the lock may also come free meanwhile).
        for attempt in range(PID_WAIT_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = _read_pid(fd)
                if pid is not None or attempt == PID_WAIT_TRIES - 1:
                    os.close(fd)
                    raise AlreadyRunning(self.path, pid) from None
                time.sleep(PID_WAIT_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        _HELD[self.path.resolve()] = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            _HELD.pop(self.path.resolve(), None)
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)  # closing drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 32, 0).decode().strip()
        return int(raw) if raw else None
    except (OSError, ValueError):
        return None


def holder_pid(data_dir: Path | str) -> int | None:
    """The pid of the process holding the data folder's lock, or None when it is free."""
    path = Path(data_dir) / LOCK_NAME
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def child_env() -> dict[str, str]:
    """Environment for a child this lock holder runs on the same data folder (see `inherited`)."""
    env = {PARENT_ENV: str(os.getpid())}
    if _HELD:
        env[FD_ENV] = str(next(iter(_HELD.values())))
    return env


def child_fds() -> tuple[int, ...]:
    """The held locks' descriptors, for `subprocess`'s ``pass_fds`` (with `child_env`)."""
    return tuple(_HELD.values())


def inherited(data_dir: Path | str) -> bool:
    """True when our parent started us to work under its lock on `data_dir`.

    With the lock's descriptor passed down (`FD_ENV`, `child_fds`), this process holds the flock itself:
    it stays held if the parent dies. The child also asks the kernel for SIGTERM when its parent dies
    (Linux ``PR_SET_PDEATHSIG``; `joe run --once` takes SIGTERM as "no new entries, finish exits and
    records"), and one whose parent is already gone gets it at once."""
    parent = os.environ.get(PARENT_ENV)
    if parent is None or not parent.isdigit():
        return False
    if _fd_holds(data_dir):
        _die_with_parent(int(parent))
        return True
    return parent == str(os.getppid()) and holder_pid(data_dir) == os.getppid()


def _fd_holds(data_dir: Path | str) -> bool:
    """True when `FD_ENV` names an open descriptor of `data_dir`'s lock file (the parent's flock)."""
    raw = os.environ.get(FD_ENV, "")
    if not raw.isdigit():
        return False
    try:
        mine, theirs = os.fstat(int(raw)), os.stat(Path(data_dir) / LOCK_NAME)
    except OSError:
        return False
    if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
        return False
    fd = int(raw)
    os.set_inheritable(fd, False)  # not passed on further
    _HELD[(Path(data_dir) / LOCK_NAME).resolve()] = fd
    return True


def _die_with_parent(parent: int) -> None:
    import signal

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass  # not Linux: the lock still holds; the orphan finishes its run
    if os.getppid() != parent:  # the parent died before the request: same as its death now
        os.kill(os.getpid(), signal.SIGTERM)
