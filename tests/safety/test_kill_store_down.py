"""``joe kill`` when the store cannot be opened still leaves a durable trace: the ``KILL`` file (review
r1119, finding 3). PostgreSQL down, a damaged ``joe.db``, a disk with no free block (an empty file needs
none): the data folder halts (or flattens) on every Joe's next check, and the answer says so."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from joe.safety.control import write_fallback_kill_file
from joe.safety.kill_switch import KillLevel, read_kill_file, write_kill_file

JOE = str(Path(sys.executable).with_name("joe"))


def _kill(
    tmp_path: Path, data: Path, *args: str, db_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JOE_DB_URL", "TRADING_MODE")}
    env["JOE_DATA_DIR"] = str(data)
    env["JOE_CONFIG"] = str(tmp_path / "execution.yaml")
    if db_url is not None:
        env["JOE_DB_URL"] = db_url
    return subprocess.run(
        [JOE, "kill", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=170
    )


def test_kill_with_the_database_down_writes_the_kill_file(tmp_path: Path) -> None:
    data = tmp_path / "pg"  # not even created yet
    url = "postgresql+psycopg://joe:pw-xyz-123@127.0.0.1:1/joe"
    out = _kill(tmp_path, data, "--flatten", "--reason", "db down, stop trading", db_url=url)
    assert out.returncode == 1, out.stderr[-1500:]
    kf = read_kill_file(data)
    assert kf is not None and kf.level is KillLevel.FLATTEN and "db down, stop trading" in kf.reason
    assert "FLATTEN by kill file" in out.stderr and str(data / "KILL") in out.stderr
    assert "pw-xyz-123" not in out.stderr + out.stdout


def test_kill_with_a_damaged_store_writes_the_kill_file_and_never_weakens_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "joe.db").write_bytes(bytes(range(256)) * 32)  # not a database
    out = _kill(tmp_path, data, "--halt", "--reason", "db damaged, stop trading")
    assert out.returncode == 1, out.stderr[-1500:]
    kf = read_kill_file(data)
    assert kf is not None and kf.level is KillLevel.HALT and "db damaged" in kf.reason
    write_kill_file(data, KillLevel.FLATTEN, "flatten asked earlier")
    again = _kill(tmp_path, data, "--reduce", "--reason", "only reduce now")
    assert again.returncode == 1
    kf = read_kill_file(data)
    assert kf is not None and kf.level is KillLevel.FLATTEN and kf.reason == "flatten asked earlier"


def test_no_free_block_still_leaves_an_empty_kill_file_which_is_halt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import joe.safety.kill_switch as ks

    def full(*_a: object, **_k: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ks, "write_kill_file", full)
    data = tmp_path / "data"
    path = write_fallback_kill_file(data, KillLevel.FLATTEN, "disk full")
    assert path == data / "KILL" and path.stat().st_size == 0
    kf = read_kill_file(data)
    assert kf is not None and kf.level is KillLevel.HALT
