"""The audit log's space reserve (`joe.audit.reserve`, issue 13 audit_full): an append that meets a full
disk frees the reserve and still lands, chained with an ``audit.disk_full`` record; the disk-full
listeners hear it once; the reserve comes back once the disk has room; the trading state moves to
REDUCING (`joe.safety.audit_disk`)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from pytest import MonkeyPatch

import joe.audit.log as audit_mod
import joe.audit.reserve as reserve_mod
from joe.audit.chain import verify
from joe.audit.log import DISK_FULL_EVENT, DISK_SPACE_BACK_EVENT, AuditLog
from joe.audit.reserve import RESERVE_FILE, SpaceReserve
from joe.safety.audit_disk import BY, entry_gate, guard_audit_disk
from joe.safety.control import SafetyContext
from joe.safety.trading_state import STATE_EVENT, TradingState
from joe.store import open_store


class FullDisk:
    """`os.write` on a disk with `free` bytes left (None: room): a write past it writes what fits and
    fails with ENOSPC, as the kernel does; deleting the reserve file gives its bytes back."""

    def __init__(self, monkeypatch: MonkeyPatch) -> None:
        self.free: int | None = None
        self.real_write, self.real_unlink = os.write, Path.unlink
        monkeypatch.setattr(audit_mod.os, "write", self.write)
        disk = self

        def unlink(path: Path, missing_ok: bool = False) -> None:
            size = path.stat().st_size if path.name == RESERVE_FILE and path.exists() else 0
            disk.real_unlink(path, missing_ok=missing_ok)
            if disk.free is not None:
                disk.free += size

        monkeypatch.setattr(Path, "unlink", unlink)

        def fallocate(fd: int, offset: int, length: int) -> None:
            if disk.free is not None and length > disk.free:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fallocate(fd, offset, length)

        real_fallocate = os.posix_fallocate
        monkeypatch.setattr(reserve_mod.os, "posix_fallocate", fallocate)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.free is None:
            return self.real_write(fd, data)
        if len(data) > self.free:
            self.real_write(fd, bytes(data[: self.free]))  # the torn part
            self.free = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.free -= len(data)
        return self.real_write(fd, data)


def _events(directory: Path) -> list[dict[str, object]]:
    return [
        json.loads(x) for f in sorted(directory.glob("audit-*.jsonl")) for x in f.read_text().splitlines()
    ]


def test_the_reserve_is_made_at_start_with_its_blocks(tmp_path: Path) -> None:
    AuditLog(tmp_path, fsync=False, reserve_bytes=4096)
    reserve = tmp_path / RESERVE_FILE
    assert reserve.stat().st_size == 4096 and reserve.stat().st_blocks * 512 >= 4096
    AuditLog(tmp_path / "none", fsync=False, reserve_bytes=0)
    assert not (tmp_path / "none" / RESERVE_FILE).exists()


def test_a_record_meeting_a_full_disk_lands_in_the_reserve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog(tmp_path, fsync=False, reserve_bytes=64 * 1024)
    log.record("order.submitted", {"i": 1})
    heard: list[str] = []
    log.add_disk_full_listener(heard.append)
    disk = FullDisk(monkeypatch)
    disk.free = 10  # the next record tears after 10 bytes
    rec = log.record("ibkr.cancel", {"order": "x"})
    assert rec.seq == 2 and log.disk_full
    assert not (tmp_path / RESERVE_FILE).exists()
    assert len(heard) == 1 and "audit disk is full" in heard[0] and "ENOSPC" in heard[0]
    log.record("order.exit", {"i": 3})  # still room in the freed space; heard once only
    assert len(heard) == 1
    events = [e["event"] for e in _events(tmp_path)]
    assert events == ["order.submitted", "ibkr.cancel", DISK_FULL_EVENT, "order.exit"]
    full = _events(tmp_path)[2]["payload"]
    assert full == {"file": rec.file.name, "error": "ENOSPC", "reserve_bytes": 64 * 1024, "at_seq": 2}
    report = verify(tmp_path)
    assert (report.ok, report.records, report.warnings) == (True, 4, [])  # no torn bytes left


def test_the_reserve_comes_back_once_the_disk_has_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog(tmp_path, fsync=False, reserve_bytes=8192)
    log.rearm_interval_s = 0.0  # tried at every record (default: at most every 5 s)
    disk = FullDisk(monkeypatch)
    disk.free = 0
    log.record("a")
    log.record("b")  # the disk is still full: the reserve cannot be made (fallocate is refused)
    assert log.disk_full and not (tmp_path / RESERVE_FILE).exists()
    disk.free = None  # the operator freed space
    log.record("c")
    assert not log.disk_full and (tmp_path / RESERVE_FILE).stat().st_size == 8192
    assert [e["event"] for e in _events(tmp_path)][-2:] == ["c", DISK_SPACE_BACK_EVENT]
    assert verify(tmp_path).ok


def test_full_past_the_reserve_fails_and_is_still_heard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog(tmp_path, fsync=False, reserve_bytes=0)
    heard: list[str] = []
    log.add_disk_full_listener(heard.append)
    FullDisk(monkeypatch).free = 0
    with pytest.raises(audit_mod.AuditWriteError) as info:
        log.record("a")
    assert info.value.errno == errno.ENOSPC and heard == []  # no reserve: nothing freed, nothing said


def test_a_full_audit_disk_moves_trading_to_reducing_and_closes_the_entry_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(data_dir=tmp_path)
    log = AuditLog(tmp_path / "audit", fsync=False, reserve_bytes=64 * 1024)
    ctx = SafetyContext(store, log, tmp_path)
    remove = guard_audit_disk(ctx)
    gate = entry_gate(ctx)
    assert gate() is None
    FullDisk(monkeypatch).free = 0
    log.record("order.attempt", {"i": 1})
    rec = ctx.states.current()
    assert (rec.state, rec.by) == (TradingState.REDUCING, BY) and "audit disk is full" in rec.reason
    assert [a.title for a in ctx.alerts.pending] == ["Trading state: REDUCING"]
    why = gate()
    assert why is not None and why.startswith("trading is reducing: ")
    events = _events(tmp_path / "audit")
    assert [e["event"] for e in events] == ["order.attempt", DISK_FULL_EVENT, STATE_EVENT]
    assert events[2]["payload"] == {"from": "active", "to": "reducing", "by": BY, "reason": rec.reason,
                                    "action": "escalate"}  # fmt: skip
    remove()
    log.close()
    store.close()


def test_space_reserve_release_and_ensure(tmp_path: Path) -> None:
    r = SpaceReserve(tmp_path, 1000)
    assert r.release() == 0 and not r.present()
    assert r.ensure(fsync=False) and r.present() and r.ensure(fsync=False)
    assert r.release() == 1000 and not r.present()
    assert not SpaceReserve(tmp_path, 0).ensure()


def test_a_used_up_reserve_is_said_once_and_closes_the_entry_gate_until_space_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13, seed 43: the reserve is gone (used up by an earlier process, or never made: the disk
    was full at start) and the disk is full. The append fails (nothing written), the full disk is still
    said once, and the entry gate refuses until the disk has room again (`AuditLog.has_room` makes the
    reserve again at once, without waiting for a record's rearm interval)."""
    store = open_store(data_dir=tmp_path)
    log = AuditLog(tmp_path / "audit", fsync=False, reserve_bytes=8192)
    ctx = SafetyContext(store, log, tmp_path)  # no guard: the gate alone, the state stays ACTIVE
    gate = entry_gate(ctx)
    heard: list[str] = []
    log.add_disk_full_listener(heard.append)
    disk = FullDisk(monkeypatch)
    (tmp_path / "audit" / RESERVE_FILE).unlink()
    disk.free = 0
    for _ in range(2):
        with pytest.raises(audit_mod.AuditWriteError):
            log.record("order.attempt")
    assert len(heard) == 1 and "no space reserve was left to free" in heard[0]
    assert log.disk_full and not log.has_room()
    assert ctx.states.current().state is TradingState.ACTIVE
    why = gate()
    assert why is not None and "audit disk is full" in why  # closed: the disk has no room
    disk.free = None  # the operator frees space
    assert gate() is None and log.has_room() and (tmp_path / "audit" / RESERVE_FILE).exists()
    assert [e["event"] for e in _events(tmp_path / "audit")] == [DISK_SPACE_BACK_EVENT]
    store.close()


def test_a_process_started_on_a_full_disk_is_reducing_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No room for the reserve at start (said before any listener was there): installing the guard
    moves the trading state to REDUCING at once, and the entry gate refuses."""
    store = open_store(data_dir=tmp_path)
    disk = FullDisk(monkeypatch)
    disk.free = 0
    log = AuditLog(tmp_path / "audit", fsync=False, reserve_bytes=8192)
    ctx = SafetyContext(store, log, tmp_path)
    remove = guard_audit_disk(ctx)  # its move's record cannot be written; the state is stored
    rec = ctx.states.current()
    assert (rec.state, rec.by) == (TradingState.REDUCING, BY) and "no room" in rec.reason
    assert entry_gate(ctx)() is not None
    remove()
    store.close()
