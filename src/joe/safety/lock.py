"""Single instance: one Joe process per data folder (and per live account).

Two ``joe run --once`` on one data folder used to corrupt the store (``position 1 is already
closed``) and leave a run row ``running`` forever. `InstanceLock` takes an exclusive ``flock`` on
``<data dir>/joe.lock`` for the life of the process and writes its pid there; a second process gets
`AlreadyRunning` naming that pid (the CLI exits 3). The kernel drops the lock when the process
dies, so a crash never leaves a stale lock behind.

Live and shadow also take a lock per broker account (`account_lock`, issue 11 point 8: one process
per account AND data folder): two data folders trading one account would each see only their own
book and enter twice (review r1119, finding 2). The account is named by the broker, the endpoint
and the account id (IBKR: host:port and ``IBKR_ACCOUNT``; Capital.com: the API URL and
``CAPITAL_ACCOUNT_ID``, else the login), so the lock file lives in one machine-wide folder
(`machine_lock_dir`: ``/run/lock/joe-locks``, which systemd's PrivateTmp does not hide). A store
that is not the folder's own ``joe.db`` (``JOE_DB_URL``) has its own lock there too (`store_lock`):
two data folders on one store are one Joe. `hold_instance` takes them all for `joe run` and
`joe daemon`.

A child started by a lock holder (the daemon's own `joe run --once`) gets the held descriptors
(`child_env`, `child_fds`) and must prove each one holds its flock (`_fd_holds`: a non-blocking
``flock`` on that very descriptor succeeds only for the open file description that holds it);
naming any other descriptor of the lock file is not enough (review r1119, finding 9).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from joe.core.process import parent_death_binder, pid_alive

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime

LOCK_NAME = "joe.lock"
# Set by a lock holder (the daemon) for the `joe run --once` it starts itself: the child runs under
# its parent's lock instead of being refused by it.
PARENT_ENV = "JOE_LOCK_PARENT"
# The lock's descriptor, passed to that child (`child_fds`): the child holds the very flock (one open
# file description), so it stays locked while an orphaned child runs after its daemon was SIGKILLed.
FD_ENV = "JOE_LOCK_FD"  # comma-separated: the data folder's lock and, live/shadow, the account's
_HELD: dict[Path, int] = {}  # this process's held locks: path → fd
# How long a refused process waits for the holder's pid to appear (50 × 10 ms).
PID_WAIT_TRIES = 50
PID_WAIT_S = 0.01


class AlreadyRunning(RuntimeError):
    """Another process holds the lock; `pid` is the holder's (None if it could not be read)."""

    def __init__(self, path: Path, pid: int | None, label: str | None = None) -> None:
        self.path = path
        self.pid = pid
        who = f"pid {pid}" if pid is not None else "pid unknown"
        where = label or str(path.parent)
        super().__init__(f"another Joe is running ({who}) on {where}; wait for it or stop it")


LOCK_DIR_ENV = "JOE_LOCK_DIR"


def machine_lock_dir() -> Path:
    """The machine-wide folder of the account and store locks: `JOE_LOCK_DIR`, else ``/run/lock/joe-locks``
    when ``/run/lock`` is writable, else ``<tmp>/joe-locks``. Not ``/tmp`` first: systemd's
    ``PrivateTmp=true`` (deploy/joe.service) gives the daemon a /tmp of its own, so a `joe run` from a
    shell on another data folder never saw the daemon's account lock and traded the same account."""
    if env := os.environ.get(LOCK_DIR_ENV, "").strip():
        return Path(env)
    run_lock = Path("/run/lock")
    if run_lock.is_dir() and os.access(run_lock, os.W_OK | os.X_OK):
        return run_lock / "joe-locks"
    return Path(tempfile.gettempdir()) / "joe-locks"


def account_lock_path(broker: str, account: str) -> Path:
    """The lock for one broker account (`account`: its endpoint and id), shared by every data folder on
    this machine. The file name is the broker and a hash of `account` (no login in a file name)."""
    digest = hashlib.sha256(f"{broker}\n{account}".encode()).hexdigest()[:20]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", broker)
    return machine_lock_dir() / f"{safe}-{digest}.lock"


def account_lock(rt: Runtime) -> InstanceLock | None:
    """The (not yet taken) lock of the broker account a live or shadow `rt` trades; None for paper or
    a broker without an account (the local paper simulator). The refusal names the account."""
    if rt.mode not in ("live", "shadow"):
        return None
    s = rt.settings
    if s.broker == "ibkr":
        cfg = rt.config.brokers.ibkr
        host, port = s.ibkr_host or cfg.host, s.ibkr_port if s.ibkr_port is not None else cfg.port
        account = s.ibkr_account or cfg.account or "(the gateway's default account)"
        ident, label = f"{host}:{port}/{account}", f"IBKR account {account} at {host}:{port}"
    elif s.broker == "capital":
        from joe.runtime.broker_capital import capital_credentials, rest_base_url

        ccfg = rt.config.brokers.capital
        demo = ccfg.demo if s.capital_demo is None else bool(s.capital_demo)
        url = rest_base_url(s.capital_api_url) or ("demo" if demo else "live")
        account_id = s.capital_account_id or ccfg.account_id
        login = capital_credentials(rt)[1]
        ident = f"{url}/{account_id or ''}/{login}"
        label = f"Capital.com {'account ' + account_id if account_id else 'login'} at {url}"
    else:
        return None
    return InstanceLock(account_lock_path(s.broker, ident), label=f"{label} (another data folder?)")


def store_lock(rt: Runtime) -> InstanceLock | None:
    """The (not yet taken) lock of the store when it is not the data folder's own ``joe.db``
    (``JOE_DB_URL`` naming a SQLite file elsewhere or a database server); None for the folder's own
    file, which the folder's lock already covers. Two data folders sharing one store are one Joe: both
    write its orders, positions and runs, and a run left "running" by the other folder's live process
    would be marked interrupted (`joe.runtime.run_once.close_interrupted_runs`). The lock file lives in
    the machine-wide lock folder, named by a hash of the store (backend, host, port and database: no
    user or password in a file name); stores shared across machines are not covered."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from joe.store.engine import is_memory_sqlite, safe_url

    try:
        url = make_url(rt.settings.database_url)
    except ArgumentError:
        return None  # the store did not open either: nothing to share
    if is_memory_sqlite(url):
        return None
    if url.get_backend_name() == "sqlite":
        db = Path(str(url.database)).resolve()
        if db == (Path(rt.data_dir) / "joe.db").resolve():
            return None
        ident = f"sqlite:{db}"
    else:
        ident = f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:20]
    path = machine_lock_dir() / f"store-{digest}.lock"
    return InstanceLock(path, label=f"the store {safe_url(url)} (another data folder?)")


class InstanceLock:
    """An exclusive, non-blocking process lock on `path` (use as a context manager or acquire/release)."""

    def __init__(self, path: Path | str, *, label: str | None = None) -> None:
        self.path = Path(path)
        self.label = label  # what the refusal names (default: the lock's folder)
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
        # refusal should name the pid; the lock may also come free meanwhile). A pid of no living
        # process is a probe's instant (`holder_pid`, e.g. `joe status` or the dashboard, holds the
        # lock for microseconds over a file a SIGKILLed run left its pid in): look again too.
        for attempt in range(PID_WAIT_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = _read_pid(fd)
                if (pid is not None and pid_alive(pid)) or attempt == PID_WAIT_TRIES - 1:
                    os.close(fd)
                    raise AlreadyRunning(self.path, pid, self.label) from None
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
    return _holder_of(Path(data_dir) / LOCK_NAME)


def _holder_of(path: Path) -> int | None:
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
        env[FD_ENV] = ",".join(str(fd) for fd in _HELD.values())
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
    return _inherited_lock(Path(data_dir) / LOCK_NAME)


def _inherited_lock(path: Path) -> bool:
    parent = os.environ.get(PARENT_ENV)
    if parent is None or not parent.isdigit():
        return False
    if _fd_holds(path):
        parent_death_binder()(int(parent))  # not Linux: the lock still holds; the orphan finishes
        return True
    return parent == str(os.getppid()) and _holder_of(path) == os.getppid()


def _fd_holds(path: Path) -> bool:
    """True when a descriptor named in `FD_ENV` holds the flock on the lock file `path` (the parent's).

    Same file (device and inode) is not proof: any process can open the lock file (review r1119,
    finding 9). A non-blocking exclusive ``flock`` on the descriptor itself succeeds only when its
    open file description is the one holding the lock (then it is a no-op) — or when nobody holds it
    (then this process now does, which is as good)."""
    for raw in os.environ.get(FD_ENV, "").split(","):
        if not raw.strip().isdigit():
            continue
        fd = int(raw)
        try:
            mine, theirs = os.fstat(fd), os.stat(path)
        except OSError:
            continue
        if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another open file description holds it: a forged descriptor
            return False
        os.set_inheritable(fd, False)  # not passed on further
        _HELD[path.resolve()] = fd
        return True
    return False


@dataclass
class HeldLocks:
    """The locks `hold_instance` took (inherited ones are the parent's to release)."""

    locks: list[InstanceLock] = field(default_factory=list)
    sole_holder: bool = False
    """True when this process took the data folder's lock (and a shared store's, `store_lock`) itself,
    not inherited from a daemon whose other children may be running: then no other Joe process is
    working on the folder or its store."""

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()
        self.locks = []


def hold_instance(rt: Runtime) -> HeldLocks:
    """Take the data folder's lock, the store's when it is not the folder's own (`store_lock`) and,
    live/shadow, the broker account's (`account_lock`), unless the parent that started this process
    holds them (`inherited`). Raises `AlreadyRunning` naming the holder (then nothing is held)."""
    held = HeldLocks()
    try:
        if not inherited(rt.data_dir):
            held.locks.append(InstanceLock.for_data_dir(rt.data_dir).acquire())
            held.sole_holder = True
        store = store_lock(rt)
        if store is not None:
            if _inherited_lock(store.path):
                held.sole_holder = False
            else:
                held.locks.append(store.acquire())
        account = account_lock(rt)
        if account is not None and not _inherited_lock(account.path):
            held.locks.append(account.acquire())
    except BaseException:
        held.release()
        raise
    return held
