"""Review r16, defects 6, 7 and 11: the operator surfaces on a full data disk and on a busy port.

* HALT when the audit log cannot be written: the state still moves (fail closed) and the answer is a
  503 saying what happened, never a bare 500; when the store cannot take it either, the ``KILL`` file
  is written and named. On a real full tmpfs (root only) the same, end to end.
* a full disk is reported as a full disk (free space), never as a damaged database to move aside.
* `joe web` on a busy port says "Cannot listen" and exits 1 without auditing ``web.started``; an empty
  web-token file (an interrupted first start) is replaced, a short one is a one-line error.
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from joe.audit.errors import AuditWriteError
from joe.cli.errors import startup_error
from joe.cli.main import app as cli
from joe.runtime.bootstrap import Runtime, bootstrap
from joe.safety.control import SafetyContext
from joe.safety.kill_switch import KillLevel, read_kill_file
from joe.store.errors import StoreError
from joe.web.app import create_app
from joe.web.auth import TokenFileError, load_or_create_token, token_path

from .conftest import audit_text

HALT = {"reason": "disk full, stop now", "confirm": "HALT"}


def _enospc(*_a: Any, **_k: Any) -> None:
    raise AuditWriteError(Path("audit/x.jsonl"), OSError(errno.ENOSPC, "No space left on device"))


def _post_halt(rt: Runtime, token: str) -> Any:
    with TestClient(create_app(rt, token), base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        return c.post("/api/control/halt", json=HALT, headers={"Authorization": f"Bearer {token}"})


def test_halt_when_the_audit_log_cannot_be_written(
    rt: Runtime, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rt.audit, "record", _enospc)
    r = _post_halt(rt, token)
    assert r.status_code == 503, r.text
    detail = r.json()["detail"]
    assert "trading is HALTED" in detail and "KILL" in detail and "full" in detail
    assert SafetyContext.from_runtime(rt).states.current().state.value == "halted"


def test_halt_when_neither_audit_nor_store_can_be_written(
    rt: Runtime, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rt.audit, "record", _enospc)

    def full(*_a: Any, **_k: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(rt.store, "set_state", full)
    r = _post_halt(rt, token)
    assert r.status_code == 503, r.text
    kf = read_kill_file(rt.data_dir)
    assert kf is not None and kf.level is KillLevel.HALT
    assert str(kf.path) in r.json()["detail"]


def test_a_full_disk_is_not_called_a_damaged_database() -> None:
    exc = StoreError("cannot open the database: (sqlite3.OperationalError) database or disk is full")
    msg = startup_error(exc)
    assert "full" in msg and "move it aside" in msg and "do NOT move it aside" in msg
    io = StoreError("(sqlite3.OperationalError) disk I/O error")
    assert "do NOT move it aside" in startup_error(io)
    damaged = StoreError("file is not a database")
    assert "move it aside (keep a copy)" in startup_error(damaged)


# -- a real full tmpfs (root only) ---------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(d: Path) -> None:
    with open(d / "filler", "wb", buffering=0) as f:  # unbuffered: closing it has nothing left to write
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    for i in range(1000):  # the last blocks
        try:
            (d / f"f{i}").write_bytes(b"\0" * 512)
        except OSError:
            break


def test_halt_button_on_a_real_full_disk(tmpfs: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOE_DATA_DIR", str(tmpfs / "data"))
    rt = bootstrap()
    try:
        token = load_or_create_token(rt.data_dir)[0]
        _fill(tmpfs)
        r = _post_halt(rt, token)
        assert r.status_code in (200, 503), r.text
        halted = SafetyContext.from_runtime(rt).states.current().state.value == "halted"
        assert halted or read_kill_file(rt.data_dir) is not None
        if r.status_code == 503:
            assert "KILL" in r.json()["detail"]
    finally:
        rt.audit.close()
        rt.close()


# -- joe web: busy port, token file ----------------------------------------------------------------


def test_joe_web_on_a_busy_port(project: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = CliRunner().invoke(cli, ["web", "--port", str(port)])
    assert r.exit_code == 1, r.output
    assert f"Cannot listen on 127.0.0.1:{port}" in r.output
    rt = bootstrap()
    try:
        assert "web.started" not in audit_text(rt)
    finally:
        rt.audit.close()
        rt.close()


def test_an_empty_token_file_is_replaced_and_a_short_one_is_an_error(project: Path) -> None:
    data = project / "data"
    data.mkdir(exist_ok=True)
    path = token_path(data)
    path.write_text("")
    os.chmod(path, 0o600)
    token, created = load_or_create_token(data)
    assert created and len(token) >= 16 and path.read_text().strip() == token
    path.write_text("short\n")
    with pytest.raises(TokenFileError, match="delete it"):
        load_or_create_token(data)
    r = CliRunner().invoke(cli, ["web", "--port", "0"])
    assert r.exit_code == 1 and "Cannot start the dashboard" in r.output and "Traceback" not in r.output


def test_doctor_on_a_real_full_disk_names_the_disk(
    tmpfs: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOE_DATA_DIR", str(tmpfs / "data"))
    CliRunner().invoke(cli, ["status"])  # the data folder and its database exist
    _fill(tmpfs)
    r = CliRunner().invoke(cli, ["doctor", "--offline"])
    assert "move it aside (keep a copy)" not in r.output, r.output[-2000:]
