"""Single instance (issue 11 point 8): one Joe per data folder AND, live/shadow, per broker account; a
lock descriptor handed to a child must be proven to hold the flock (review r1119, findings 2 and 9).

The end-to-end proof of the account lock (two live runs from two folders against the IBKR simulator)
is ``tests/runtime/test_operator_reach.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from joe.config.schema import ExecutionConfig
from joe.safety.lock import (
    FD_ENV,
    LOCK_NAME,
    PARENT_ENV,
    AlreadyRunning,
    InstanceLock,
    account_lock,
    child_env,
    hold_instance,
    store_lock,
)

JOE = str(Path(sys.executable).with_name("joe"))
# Holds the lock until the test ends it (the fixture's SIGTERM), not for a fixed while: a holder that
# let go after 120 s could let a slow `joe run` (timeout 170 s) in, and the refusal became a run.
HOLDER = (
    "import signal, sys\n"
    "from joe.safety.lock import InstanceLock\n"
    "InstanceLock(sys.argv[1]).acquire()\n"
    "open(sys.argv[2], 'w').close()\n"
    "while True:\n"
    "    signal.pause()\n"
)
CHILD = (
    "import sys\nfrom pathlib import Path\nfrom joe.safety.lock import _inherited_lock\n"
    "print(*[_inherited_lock(Path(p)) for p in sys.argv[1:]])"
)


def _rt(data_dir: Path, mode: str = "live", broker: str = "ibkr", **settings: Any) -> Any:
    base = dict(
        broker=broker, ibkr_host=None, ibkr_port=4002, ibkr_account="DU1234567", capital_demo=None,
        capital_api_url=None, capital_account_id=None, capital_identifier="me@example.com",
        capital_api_key=None, capital_password=None, database_url=f"sqlite:///{data_dir / 'joe.db'}",
    )  # fmt: skip
    return SimpleNamespace(
        mode=mode,
        data_dir=data_dir,
        settings=SimpleNamespace(**{**base, **settings}),
        config=ExecutionConfig(),
    )


@pytest.fixture
def holder(tmp_path: Path) -> Any:
    """Another process holding a lock file: yields a function(path) that starts one."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(path: Path) -> int:
        ready = tmp_path / f"ready-{len(procs)}"
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(ready)])
        procs.append(p)
        for _ in range(2400):  # up to 120 s: an interpreter's start on a loaded machine
            if ready.exists():
                return p.pid
            assert p.poll() is None, "the holder died"
            import time

            time.sleep(0.05)
        raise AssertionError("holder did not take the lock")

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def test_a_forged_lock_descriptor_does_not_bypass_the_lock(tmp_path: Path, holder: Any) -> None:
    data = tmp_path / "data"
    data.mkdir()
    pid = holder(data / LOCK_NAME)
    fd = os.open(data / LOCK_NAME, os.O_RDONLY)  # any process may open the lock file
    try:
        env = {**os.environ, PARENT_ENV: str(os.getpid()), FD_ENV: str(fd), "JOE_DATA_DIR": str(data)}
        env.pop("TRADING_MODE", None)
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(data / LOCK_NAME)], env=env, pass_fds=(fd,),
            capture_output=True, text=True,
        )  # fmt: skip
        run = subprocess.run(
            [JOE, "run", "--once"], cwd=tmp_path, env=env, pass_fds=(fd,), capture_output=True, text=True,
            timeout=170,
        )  # fmt: skip
    finally:
        os.close(fd)
    assert child.stdout.split() == ["False"], child.stderr[-800:]
    assert run.returncode == 3, run.stderr[-1500:]
    assert f"another Joe is running (pid {pid})" in run.stderr


def test_a_childs_inherited_descriptors_each_hold_their_lock(tmp_path: Path, holder: Any) -> None:
    folder, account = tmp_path / LOCK_NAME, tmp_path / "account.lock"
    with InstanceLock(folder), InstanceLock(account):
        env = {**os.environ, **child_env()}
        fds = tuple(int(x) for x in env[FD_ENV].split(","))
        ok = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder), str(account)], env=env, pass_fds=fds,
            capture_output=True, text=True,
        )  # fmt: skip
    assert ok.stdout.split() == ["True", "True"], ok.stderr[-800:]
    # The account lock held by ANOTHER process, its file opened here: not inherited.
    holder(account)
    forged = os.open(account, os.O_RDONLY)
    try:
        env = {**os.environ, PARENT_ENV: str(os.getpid()), FD_ENV: str(forged)}
        bad = subprocess.run(
            [sys.executable, "-c", CHILD, str(account)], env=env, pass_fds=(forged,), capture_output=True,
            text=True,
        )  # fmt: skip
    finally:
        os.close(forged)
    assert bad.stdout.split() == ["False"], bad.stderr[-800:]


def test_the_account_lock_names_one_account_whatever_the_data_folder(tmp_path: Path) -> None:
    a, b = account_lock(_rt(tmp_path / "a")), account_lock(_rt(tmp_path / "b", mode="shadow"))
    assert a is not None and b is not None and a.path == b.path
    other_account = account_lock(_rt(tmp_path / "a", ibkr_account="U7654321"))
    other_gateway = account_lock(_rt(tmp_path / "a", ibkr_port=4001))
    assert other_account is not None and other_account.path != a.path
    assert other_gateway is not None and other_gateway.path != a.path
    assert account_lock(_rt(tmp_path / "a", mode="paper")) is None
    assert account_lock(_rt(tmp_path / "a", broker="sim")) is None
    cap = account_lock(_rt(tmp_path / "a", broker="capital", capital_api_url="http://127.0.0.1:9"))
    assert cap is not None and "example" not in cap.path.name  # no login in a file name


def test_a_second_process_on_the_same_account_is_refused_and_holds_nothing(
    tmp_path: Path, holder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PARENT_ENV, raising=False)
    monkeypatch.setenv("JOE_LOCK_DIR", str(tmp_path / "tmp"))  # the lock folder is ours alone
    first = _rt(tmp_path / "a")
    lock = account_lock(first)
    assert lock is not None and str(tmp_path / "tmp") in str(lock.path)
    lock.path.parent.mkdir(parents=True)
    pid = holder(lock.path)
    second = _rt(tmp_path / "b")
    (tmp_path / "b").mkdir()
    with pytest.raises(AlreadyRunning) as e:
        hold_instance(second)
    assert e.value.pid == pid
    assert "IBKR account DU1234567 at 127.0.0.1:4002" in str(e.value)
    # The folder lock it took first was let go: a paper run on folder b is free to start.
    held = hold_instance(_rt(tmp_path / "b", mode="paper"))
    assert [x.path for x in held.locks] == [tmp_path / "b" / LOCK_NAME]
    held.release()


# -- hostile review: a store shared by two data folders is one Joe ---------------------------------------


@pytest.fixture
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The machine-wide lock folder, ours alone (JOE_LOCK_DIR)."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.delenv(PARENT_ENV, raising=False)
    monkeypatch.setenv("JOE_LOCK_DIR", str(d))
    return d


def test_two_data_folders_on_one_store_are_one_instance(tmp_path: Path, lock_dir: Path) -> None:
    """The folder lock alone let two data folders write one store (JOE_DB_URL) at once: orders and
    positions of both in one book, and one folder's run marking the other's live run interrupted."""
    shared = f"sqlite:///{tmp_path / 'shared' / 'joe.db'}"
    first = hold_instance(_rt(tmp_path / "a", mode="paper", database_url=shared))
    try:
        assert first.sole_holder and len(first.locks) == 2
        with pytest.raises(AlreadyRunning) as e:
            hold_instance(_rt(tmp_path / "b", mode="paper", database_url=shared))
        assert f"the store {shared} (another data folder?)" in str(e.value)
        assert e.value.pid == os.getpid()
        # b's folder lock, taken first, was let go: b on its own store starts.
        own = hold_instance(_rt(tmp_path / "b", mode="paper"))
        assert [x.path for x in own.locks] == [tmp_path / "b" / LOCK_NAME]  # its own joe.db: no store lock
        own.release()
    finally:
        first.release()


def test_a_server_store_is_named_by_host_port_and_database_never_by_login(
    tmp_path: Path, lock_dir: Path
) -> None:
    def lock(url: str) -> InstanceLock:
        got = store_lock(_rt(tmp_path / "a", mode="paper", database_url=url))
        assert got is not None
        return got

    base = lock("postgresql+psycopg://joe:s3cret@db.example:5432/joe")
    assert lock("postgresql+psycopg2://other:pw@db.example:5432/joe").path == base.path  # same database
    assert lock("postgresql+psycopg://joe:s3cret@db.example:5432/joe2").path != base.path
    assert lock("postgresql+psycopg://joe:s3cret@db2.example:5432/joe").path != base.path
    assert "s3cret" not in str(base.path) and "joe:" not in base.path.name
    assert base.label is not None and "s3cret" not in base.label
    assert store_lock(_rt(tmp_path / "a", mode="paper", database_url="sqlite://")) is None  # in memory


def test_a_run_on_another_folder_sharing_the_store_neither_runs_nor_interrupts_the_live_run(
    tmp_path: Path, lock_dir: Path, holder: Any
) -> None:
    """`joe run --once` as its folder's sole lock holder marks every run still "running" interrupted: on
    a store another data folder's Joe is using, that was the other's live run."""
    from joe.store import open_store

    shared = f"sqlite:///{tmp_path / 'shared' / 'joe.db'}"
    (tmp_path / "shared").mkdir()
    store = open_store(shared, data_dir=tmp_path / "a")
    try:
        store.start_run("live-on-a", mode="paper", broker="sim", source="test")
    finally:
        store.close()
    lock = store_lock(_rt(tmp_path / "a", mode="paper", database_url=shared))
    assert lock is not None
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    pid = holder(lock.path)  # folder a's Joe, mid-run
    (tmp_path / "b").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADING_", "JOE_", "IBKR_", "CAPITAL_"))}
    env.update(JOE_LOCK_DIR=str(lock_dir), JOE_DATA_DIR=str(tmp_path / "b"), JOE_DB_URL=shared)
    run = subprocess.run([JOE, "run", "--once"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=170)  # fmt: skip
    assert run.returncode == 3, run.stderr[-1500:]
    assert f"another Joe is running (pid {pid})" in run.stderr and "the store" in run.stderr
    store = open_store(shared, data_dir=tmp_path / "a")
    try:
        row = store.get_run("live-on-a")
    finally:
        store.close()
    assert row is not None and row.status == "running"


def test_the_account_lock_is_shared_by_processes_with_private_tmp_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/joe.service runs the daemon with systemd's PrivateTmp=true: its /tmp is its own. The
    account lock lived in <tmp>/joe-locks, so a `joe run --once` from an SSH shell on another data
    folder (the shell's /tmp) never saw it and traded the same account beside the daemon."""
    import tempfile

    if not os.access("/run/lock", os.W_OK | os.X_OK):
        pytest.skip("no writable /run/lock on this machine (then JOE_LOCK_DIR names the shared folder)")
    monkeypatch.delenv("JOE_LOCK_DIR", raising=False)
    paths = []
    for private in ("unit-tmp", "shell-tmp"):  # the daemon's private /tmp, the operator's shell's
        (tmp_path / private).mkdir()
        monkeypatch.setenv("TMPDIR", str(tmp_path / private))
        monkeypatch.setattr(tempfile, "tempdir", None)
        lock = account_lock(_rt(tmp_path / private / "data"))
        assert lock is not None
        paths.append(lock.path)
    assert paths[0] == paths[1] and not str(paths[0]).startswith(str(tmp_path))
    monkeypatch.setenv("JOE_LOCK_DIR", str(tmp_path / "locks"))
    lock = account_lock(_rt(tmp_path / "a"))
    assert lock is not None and lock.path.parent == tmp_path / "locks"


def test_a_status_probe_over_a_dead_runs_pid_never_refuses_a_starting_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`holder_pid` (joe status, the dashboard) takes the folder's lock for an instant; the file still
    names a run a SIGKILL ended. A run starting in that instant waits it out instead of being refused
    as "another Joe is running (pid <dead>)"."""
    import fcntl

    import joe.safety.lock as lock_mod

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock = InstanceLock.for_data_dir(tmp_path)
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    lock.path.write_text(f"{gone.pid}\n")  # what a SIGKILLed holder leaves
    probe = os.open(lock.path, os.O_RDWR)
    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the probe's instant, frozen
    slept: list[float] = []

    def probe_lets_go(s: float) -> None:
        slept.append(s)
        fcntl.flock(probe, fcntl.LOCK_UN)  # the probe is done by the time the run looks again

    monkeypatch.setattr(lock_mod.time, "sleep", probe_lets_go)
    try:
        lock.acquire()
        assert lock.held and len(slept) == 1
        assert lock.path.read_text() == f"{os.getpid()}\n"
    finally:
        lock.release()
        os.close(probe)


def test_a_living_holder_is_refused_by_its_pid(tmp_path: Path, holder: Any) -> None:
    pid = holder(tmp_path / LOCK_NAME)
    with pytest.raises(AlreadyRunning) as refused:
        InstanceLock.for_data_dir(tmp_path).acquire()
    assert refused.value.pid == pid
