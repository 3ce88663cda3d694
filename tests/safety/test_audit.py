"""AuditLog: chain round trip, tamper detection, rollover, restarts, torn tails, write errors, CLI."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from joe.audit import log as audit_mod
from joe.audit.chain import content_hash
from joe.audit.log import GENESIS, AuditLog, AuditWriteError, tail, verify
from joe.cli.audit_cmd import audit_app


class Clock:
    """A settable clock for deterministic timestamps and day rollover."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().rstrip(b"\n").split(b"\n")


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _only_file(directory: Path) -> Path:
    (f,) = sorted(directory.glob("audit-*.jsonl"))
    return f


def _fill(directory: Path, n: int = 6, **kw: object) -> AuditLog:
    log = AuditLog(directory, fsync=False, **kw)  # type: ignore[arg-type]
    for i in range(n):
        log.record(
            "order.submitted", {"i": i, "qty": Decimal("1.5")}, client_order_id=f"joe-{i}", run_id="r1"
        )
    return log


def test_round_trip_chain_and_record_shape(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, clock=Clock(datetime(2025, 3, 4, 12, 0, tzinfo=UTC)))
    first = log.record("config.loaded", {"mode": "paper"}, run_id="r1", signal_id=None)
    second = log.record("order.submitted", {"qty": Decimal("2")}, client_order_id="joe-abc")
    path = tmp_path / "audit-2025-03-04.jsonl"
    lines = _lines(path)
    assert len(lines) == 2
    recs = [json.loads(line) for line in lines]
    assert recs[0] == first.to_dict()
    assert recs[1] == second.to_dict()
    assert recs[0]["ids"] == {"run_id": "r1"}  # None ids are dropped
    assert (recs[0]["seq"], recs[1]["seq"]) == (1, 2)
    assert recs[0]["prev"] == GENESIS
    assert recs[1]["prev"] == hashlib.sha256(lines[0]).hexdigest()
    assert recs[1]["hash"] == content_hash(recs[1])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", recs[0]["ts"])
    assert first.file == path
    report = verify(tmp_path)
    assert (report.ok, report.records, report.last_seq, report.warnings) == (True, 2, 2, [])
    assert [r["event"] for r in tail(tmp_path, 5)] == ["config.loaded", "order.submitted"]
    assert [r["seq"] for r in tail(tmp_path, 1)] == [2]


class Colour(Enum):
    RED = "red"


@dataclasses.dataclass
class Leg:
    price: Decimal
    when: datetime
    colour: Colour


def test_domain_values_serialise(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    payload: dict[Any, Any] = {
        "leg": Leg(Decimal("101.25"), when, Colour.RED),
        "tags": {"b", "a"},
        "path": Path("/x"),
        "err": ValueError("boom"),
        7: (1, 2),
    }
    rec = log.record("fill", payload)
    assert rec.payload == {
        "leg": {"price": "101.25", "when": "2025-01-02T03:04:05+00:00", "colour": "red"},
        "tags": ["a", "b"],
        "path": "/x",
        "err": "ValueError: boom",
        "7": [1, 2],
    }
    assert json.loads(_lines(_only_file(tmp_path))[0])["payload"] == rec.payload
    assert verify(tmp_path).ok


def _tamper_payload(lines: list[bytes], k: int) -> None:
    rec = json.loads(lines[k])
    rec["payload"]["i"] = 999
    lines[k] = json.dumps(rec, separators=(",", ":")).encode()


def _tamper_seq(lines: list[bytes], k: int) -> None:
    lines[k] = lines[k].replace(b'"seq":%d' % (k + 1), b'"seq":%d' % (k + 7))


def _delete(lines: list[bytes], k: int) -> None:
    del lines[k]


def _swap(lines: list[bytes], k: int) -> None:
    lines[k], lines[k + 1] = lines[k + 1], lines[k]


def _garbage(lines: list[bytes], k: int) -> None:
    lines.insert(k, b"not json")


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_tamper_payload, "hash mismatch"),
        (_tamper_seq, "hash mismatch"),
        (_delete, "prev mismatch"),
        (_swap, "prev mismatch"),
        (_garbage, "bad json"),
    ],
)
@pytest.mark.parametrize("k", [0, 2, 4])
def test_tampering_is_detected_at_the_right_line(tmp_path: Path, tamper, reason: str, k: int) -> None:
    _fill(tmp_path)
    path = _only_file(tmp_path)
    lines = _lines(path)
    tamper(lines, k)
    _write_lines(path, lines)
    report = verify(tmp_path)
    assert not report.ok
    assert report.first_break is not None
    assert (report.first_break.file, report.first_break.line, report.first_break.reason) == (
        path.name,
        k + 1,
        reason,
    )


def test_seq_change_with_recomputed_hash_is_a_seq_gap(tmp_path: Path) -> None:
    _fill(tmp_path)
    path = _only_file(tmp_path)
    lines = _lines(path)
    rec = json.loads(lines[3])
    rec["seq"] = 40
    rec["hash"] = content_hash(rec)
    lines[3] = json.dumps(rec).encode()
    _write_lines(path, lines)
    brk = verify(tmp_path).first_break
    assert brk is not None
    assert (brk.line, brk.reason) == (4, "seq gap")


def test_deleting_the_last_record_of_a_middle_file_is_detected(tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 3, 4, 23, 59, 59, 990000, tzinfo=UTC))
    log = AuditLog(tmp_path, fsync=False, clock=clock)
    for i in range(30):
        log.record("tick", {"i": i})
    first, second = sorted(tmp_path.glob("audit-*.jsonl"))
    _write_lines(first, _lines(first)[:-1])
    brk = verify(tmp_path).first_break
    assert brk is not None
    assert (brk.file, brk.line, brk.reason) == (second.name, 1, "prev mismatch")


def test_day_rollover_and_seq_continues_across_restarts(tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 3, 4, 23, 59, 59, 997000, tzinfo=UTC))
    log = AuditLog(tmp_path, clock=clock)
    seqs = [log.record("tick", {"i": i}).seq for i in range(5)]
    log.close()
    assert sorted(p.name for p in tmp_path.glob("audit-*.jsonl")) == [
        "audit-2025-03-04.jsonl",
        "audit-2025-03-05.jsonl",
    ]
    assert len(_lines(tmp_path / "audit-2025-03-04.jsonl")) == 2
    clock.now += timedelta(days=2)  # restart two days later
    with AuditLog(tmp_path, clock=clock) as again:
        assert again.last_seq == 5
        seqs.append(again.record("restart").seq)
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "audit-2025-03-07.jsonl").exists()
    report = verify(tmp_path)
    assert (report.ok, report.records, len(report.files)) == (True, 6, 3)


def test_clock_stepping_back_never_writes_into_an_older_file(tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 3, 5, 0, 0, tzinfo=UTC))
    log = AuditLog(tmp_path, fsync=False, clock=clock)
    log.record("a")
    clock.now -= timedelta(days=1)
    rec = log.record("b")
    assert rec.file.name == "audit-2025-03-05.jsonl"
    assert verify(tmp_path).ok


def test_threads_and_instances_share_one_chain(tmp_path: Path) -> None:
    logs = [AuditLog(tmp_path, fsync=False), AuditLog(tmp_path, fsync=False)]

    def work(log: AuditLog, t: int) -> None:
        for i in range(25):
            log.record("tick", {"t": t, "i": i})

    threads = [threading.Thread(target=work, args=(logs[t % 2], t)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = verify(tmp_path)
    assert (report.ok, report.records) == (True, 100)


def test_torn_tail_is_a_warning_then_recovered(tmp_path: Path) -> None:
    _fill(tmp_path, 3).close()
    path = _only_file(tmp_path)
    with path.open("ab") as f:
        f.write(b'{"ts":"2025-01-01T00:00:00.000000Z","seq":4,"ev')
    report = verify(tmp_path)
    assert report.ok and report.records == 3
    assert [(w.line, w.reason) for w in report.warnings] == [(4, "torn tail")]
    assert [r["seq"] for r in tail(tmp_path, 10)] == [1, 2, 3]

    log = AuditLog(tmp_path, fsync=False)
    rec = log.record("after.crash")
    assert rec.seq == 5
    lines = _lines(path)
    recovered = json.loads(lines[4])
    assert recovered["event"] == "audit.recovered" and recovered["seq"] == 4
    assert recovered["prev"] == hashlib.sha256(lines[2]).hexdigest()  # chained to the last complete record
    assert recovered["payload"]["torn_bytes"] == len(lines[3])
    report = verify(tmp_path)
    assert (report.ok, report.records) == (True, 5)
    assert [(w.line, w.reason) for w in report.warnings] == [(4, "torn line recovered")]


def test_altering_recovered_torn_bytes_breaks_the_chain(tmp_path: Path) -> None:
    _fill(tmp_path, 2).close()
    path = _only_file(tmp_path)
    with path.open("ab") as f:
        f.write(b'{"ts":')
    AuditLog(tmp_path, fsync=False).record("x")
    lines = _lines(path)
    lines[2] = b'{"ts":9'
    _write_lines(path, lines)
    brk = verify(tmp_path).first_break
    assert brk is not None
    assert (brk.line, brk.reason) == (3, "bad json")


def test_complete_last_line_missing_only_its_newline(tmp_path: Path) -> None:
    _fill(tmp_path, 3).close()
    path = _only_file(tmp_path)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert verify(tmp_path).warnings == []
    AuditLog(tmp_path, fsync=False).record("next")
    report = verify(tmp_path)
    assert (report.ok, report.records, report.warnings) == (True, 4, [])


def test_torn_fragment_alone_in_a_new_day_file(tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 3, 4, 12, 0, tzinfo=UTC))
    _fill(tmp_path, 2, clock=clock).close()
    (tmp_path / "audit-2025-03-05.jsonl").write_bytes(b'{"ts":"2025-03-05')
    (tmp_path / "audit-2025-03-06.jsonl").write_bytes(b"")  # created, crashed before the write
    assert verify(tmp_path).warnings[0].reason == "torn tail"
    clock.now += timedelta(days=3)
    rec = AuditLog(tmp_path, fsync=False, clock=clock).record("next")
    assert rec.seq == 4
    report = verify(tmp_path)
    assert (report.ok, report.records) == (True, 4)
    assert [w.reason for w in report.warnings] == ["torn line recovered"]


def test_unwritable_directory_raises_audit_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(AuditWriteError, match="not-a-dir"):
        AuditLog(blocker / "audit")


def test_disk_full_mid_write_raises_then_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk full even after the space reserve was freed (`joe.audit.reserve`): the record fails, its
    torn bytes are cut off (nothing for the next writer to recover), the chain goes on."""
    log = _fill(tmp_path, 3)
    real_write = os.write

    def half_then_enospc(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit_mod.os, "write", half_then_enospc)
    with pytest.raises(AuditWriteError, match=r"audit-\d{4}-\d\d-\d\d\.jsonl: No space left") as info:
        log.record("order.submitted", {"i": 99})
    assert info.value.errno == errno.ENOSPC
    monkeypatch.setattr(audit_mod.os, "write", real_write)
    report = verify(tmp_path)
    assert (report.ok, report.records, report.warnings) == (True, 3, [])

    assert log.record("order.submitted", {"i": 100}).seq == 4
    report = verify(tmp_path)
    assert (report.ok, report.records, report.warnings) == (True, 4, [])


def test_fsync_failure_is_not_an_acknowledgement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = AuditLog(tmp_path, fsync=True)
    log.record("a")

    def eio(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(audit_mod.os, "fsync", eio)
    with pytest.raises(AuditWriteError, match="Input/output error"):
        log.record("b")


def test_closed_log_refuses_to_write(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.close()
    with pytest.raises(AuditWriteError):
        log.record("late")


# -- CLI ---------------------------------------------------------------------------------------
runner = CliRunner()


def test_cli_verify_ok_and_broken(tmp_path: Path) -> None:
    _fill(tmp_path, 4).close()
    ok = runner.invoke(audit_app, ["verify", "--dir", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    said = " ".join(ok.output.split())  # the console wraps at its width, wherever the path ends
    assert "OK" in said and "4 records" in said

    path = _only_file(tmp_path)
    lines = _lines(path)
    _tamper_payload(lines, 2)
    _write_lines(path, lines)
    bad = runner.invoke(audit_app, ["verify", "--dir", str(tmp_path)])
    assert bad.exit_code == 1
    assert f"{path.name}:3:hashmismatch" in "".join(bad.output.split())  # wrapped anywhere
    js = runner.invoke(audit_app, ["verify", "--dir", str(tmp_path), "--json"])
    assert js.exit_code == 1
    data = json.loads(js.output)
    assert data["ok"] is False
    assert data["first_break"] == {"file": path.name, "line": 3, "reason": "hash mismatch", "detail": "seq 3"}


def test_cli_tail_and_default_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(tmp_path / "audit", 5).close()
    monkeypatch.setenv("JOE_DATA_DIR", str(tmp_path))
    res = runner.invoke(audit_app, ["tail", "-n", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert [json.loads(line)["seq"] for line in res.output.splitlines()] == [4, 5]
    table = runner.invoke(audit_app, ["tail"])
    assert table.exit_code == 0
    assert "order.submitted" in table.output and "joe-4" in table.output
    assert runner.invoke(audit_app, ["verify"]).exit_code == 0
