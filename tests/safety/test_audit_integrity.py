"""Audit integrity (issue 11): the tail is anchored in the store, timestamps are monotonic and a clock
jump is recorded not followed, record size is capped, payloads are standard JSON or refused."""

from __future__ import annotations

import fcntl
import json
import math
import os
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joe.audit.anchor import MemoryAnchor, StoreAnchor
from joe.audit.chain import content_hash, sha256_hex
from joe.audit.errors import AuditPayloadError, AuditRecordTooLarge, AuditWriteError
from joe.audit.log import CLOCK_JUMP_EVENT, LOCK_FILE, AuditLog, tail, verify
from joe.store import open_store


class Clock:
    """Wall clock and monotonic clock moving together by 1 ms per reading (a jump can be injected)."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.mono = 1000.0
        self.jump_once: timedelta | None = None

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        self.mono += 0.001
        if self.jump_once is not None:
            j, self.jump_once = self.jump_once, None
            return self.now + j
        return self.now

    def monotonic(self) -> float:
        return self.mono


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().rstrip(b"\n").split(b"\n")


def _files(d: Path) -> list[Path]:
    return sorted(d.glob("audit-*.jsonl"))


def _anchored_log(d: Path, n: int) -> tuple[AuditLog, MemoryAnchor]:
    anchor = MemoryAnchor()
    log = AuditLog(d, fsync=False)
    log.attach_anchor(anchor)
    for i in range(n):
        log.record("order.fill" if i % 3 == 2 else "order.ack", {"i": i}, client_order_id=f"c{i}")
    return log, anchor


# ----------------------------------------------------------------------------- the tail and its anchor
def test_deleting_the_last_records_including_a_fill_is_detected(tmp_path: Path) -> None:
    log, anchor = _anchored_log(tmp_path, 6)
    log.close()
    (f,) = _files(tmp_path)
    lines = _lines(f)
    assert json.loads(lines[-1])["event"] == "order.fill"
    f.write_bytes(b"".join(line + b"\n" for line in lines[:-2]))
    alone = verify(tmp_path)  # the anchor file beside the chain tells...
    assert (
        not alone.ok
        and alone.first_break is not None
        and "audit.anchor says seq 6" in alone.first_break.detail
    )
    report = verify(tmp_path, anchor.anchor)  # ...and so does the store's anchor
    assert not report.ok and report.first_break is not None
    assert report.first_break.reason == "tail missing"
    assert "seq 6" in report.first_break.detail


def test_the_next_writer_does_not_hide_a_deleted_tail(tmp_path: Path) -> None:
    log, anchor = _anchored_log(tmp_path, 5)
    log.close()
    (f,) = _files(tmp_path)
    f.write_bytes(b"".join(line + b"\n" for line in _lines(f)[:-1]))
    again = AuditLog(tmp_path, fsync=False)
    problem = again.attach_anchor(anchor)
    # (the anchor file beside the chain already made the writer record the mismatch, at seq 5)
    assert problem is not None and ("anchored seq 5" in problem or "seq 5 is not the record" in problem)
    for i in range(5):  # writing on past the anchor's seq must not make the chain look whole again
        again.record("later", {"i": i})
    report = verify(tmp_path, anchor.anchor)
    assert not report.ok and report.first_break is not None
    assert report.first_break.reason == "anchor mismatch"
    assert any(r["event"] == "audit.anchor_mismatch" for r in tail(tmp_path, 10))


def test_anchor_lives_in_the_store_and_commits_with_its_state(tmp_path: Path) -> None:
    store = open_store(data_dir=tmp_path)
    log = AuditLog(tmp_path / "audit", fsync=False)
    log.attach_anchor(StoreAnchor(store))
    with store.atomic():  # the state change and the record describing it commit together
        store.set_state("some.state", {"v": 1})
        rec = log.record("state.changed", {"v": 1})
    anchor = StoreAnchor(store).load_anchor()
    assert anchor is not None and (anchor.seq, anchor.line_hash) == (rec.seq, rec.line_hash)
    with pytest.raises(RuntimeError), store.atomic():  # rolled back: the anchor stays behind
        log.record("state.changed", {"v": 2})
        raise RuntimeError("crash before commit")
    after = StoreAnchor(store).load_anchor()
    assert after is not None and after.seq == rec.seq
    report = verify(tmp_path / "audit", after)
    assert report.ok and [w.reason for w in report.warnings] == ["after anchor"]
    store.close()


def test_cli_verify_uses_the_store_anchor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from joe.cli.main import app

    monkeypatch.setenv("JOE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("JOE_DB_URL", raising=False)
    store = open_store(data_dir=tmp_path)
    log = AuditLog(tmp_path / "audit", fsync=False)
    log.attach_anchor(StoreAnchor(store))
    for i in range(4):
        log.record("e", {"i": i})
    store.close()
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "anchored in the store at seq 4" in ok.output
    (f,) = _files(tmp_path / "audit")
    f.write_bytes(b"".join(line + b"\n" for line in _lines(f)[:-1]))
    bad = runner.invoke(app, ["audit", "verify", "--json"])
    assert bad.exit_code == 1
    assert json.loads(bad.output)["first_break"]["reason"] == "tail missing"


# ------------------------------------------------------------------- property: any tampering is caught
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(min_value=2, max_value=12),
    data=st.data(),
)
def test_any_deletion_reordering_or_edit_is_detected(tmp_path_factory: Any, n: int, data: Any) -> None:
    d = tmp_path_factory.mktemp("chain")
    log, anchor = _anchored_log(d, n)
    log.close()
    (f,) = _files(d)
    lines = _lines(f)
    kind = data.draw(st.sampled_from(["delete", "delete_tail", "swap", "edit", "edit_rehash"]))
    if kind == "delete":
        drop = data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n - 1))
        new = [line for i, line in enumerate(lines) if i not in drop]
    elif kind == "delete_tail":
        k = data.draw(st.integers(1, n - 1))
        new = lines[:-k]
    elif kind == "swap":
        i = data.draw(st.integers(0, n - 2))
        j = data.draw(st.integers(i + 1, n - 1))
        new = list(lines)
        new[i], new[j] = new[j], new[i]
    else:
        i = data.draw(st.integers(0, n - 1))
        rec = json.loads(lines[i])
        rec["payload"]["i"] = -1
        if kind == "edit_rehash":  # a careful forger recomputes the record's own hash
            rec["hash"] = content_hash(rec)
        new = list(lines)
        new[i] = json.dumps(rec, separators=(",", ":")).encode()
    f.write_bytes(b"".join(line + b"\n" for line in new))
    assert not verify(d, anchor.anchor).ok


# ------------------------------------------------------------------------------------------- clock
def test_one_far_future_reading_is_recorded_not_followed(tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 3, 4, 12, 0, tzinfo=UTC))
    log = AuditLog(tmp_path, fsync=False, clock=clock, monotonic=clock.monotonic)
    log.record("a")
    clock.jump_once = timedelta(days=365 * 80)
    log.record("b")
    log.record("c")
    assert [p.name for p in _files(tmp_path)] == ["audit-2025-03-04.jsonl"]  # no far-future file
    recs = tail(tmp_path, 10)
    assert [r["event"] for r in recs] == ["a", CLOCK_JUMP_EVENT, "b", "c"]
    jump = recs[1]["payload"]
    assert jump["clock_read"].startswith("2105-") and jump["followed"] is False
    ts = [r["ts"] for r in recs]
    assert ts == sorted(ts) and all(t.startswith("2025-03-04") for t in ts)
    assert verify(tmp_path).ok


def test_a_persistent_jump_is_followed_after_confirmation(tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 3, 4, 12, 0, tzinfo=UTC))
    log = AuditLog(tmp_path, fsync=False, clock=clock, monotonic=clock.monotonic)
    log.record("a")
    clock.now += timedelta(hours=2)  # the wall clock steps (NTP) while monotonic time does not
    events = [log.record(f"r{i}").event for i in range(4)]
    recs = tail(tmp_path, 10)
    jumps = [r["payload"]["followed"] for r in recs if r["event"] == CLOCK_JUMP_EVENT]
    assert jumps == [False, True] and events == ["r0", "r1", "r2", "r3"]
    assert recs[-1]["ts"].startswith("2025-03-04T14:")
    assert verify(tmp_path).ok


def test_clock_going_back_keeps_timestamps_monotonic(tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 3, 5, 0, 0, 1, tzinfo=UTC))
    log = AuditLog(tmp_path, fsync=False, clock=clock)
    first = log.record("a")
    clock.now -= timedelta(days=1)
    log.record("b")
    recs = tail(tmp_path, 10)
    assert [r["event"] for r in recs] == ["a", CLOCK_JUMP_EVENT, "b"]
    assert all(r["ts"] >= first.ts for r in recs)
    assert verify(tmp_path).ok


def test_verify_rejects_timestamps_going_backwards(tmp_path: Path) -> None:
    # A forger who keeps the chain's hashes valid but writes time backwards is still caught.
    prev, out = "0" * 64, []
    for seq, ts in enumerate(["2025-03-04T10:00:00.000000Z", "2025-03-04T09:00:00.000000Z"], 1):
        body = {"ts": ts, "seq": seq, "event": "e", "ids": {}, "payload": {}, "prev": prev}
        line = json.dumps({**body, "hash": content_hash(body)}, separators=(",", ":")).encode()
        out.append(line)
        prev = sha256_hex(line)
    (tmp_path / "audit-2025-03-04.jsonl").write_bytes(b"".join(x + b"\n" for x in out))
    brk = verify(tmp_path).first_break
    assert brk is not None and brk.reason == "timestamp went backwards"


# ------------------------------------------------------------------------------------------ payloads
def test_oversized_record_is_refused_at_once_without_the_lock(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    log.record("small")
    holder = os.open(tmp_path / LOCK_FILE, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process holds the lock: a refusal must not wait for it
    errors: list[BaseException] = []

    def big() -> None:
        try:
            log.record("huge", {"blob": "x" * (32 * 1024 * 1024)})
        except BaseException as e:
            errors.append(e)

    worker = threading.Thread(target=big)
    try:
        worker.start()
        worker.join(120)  # had it queued on the lock we hold, it would never finish
        assert not worker.is_alive()
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
        worker.join()
    (err,) = errors
    assert isinstance(err, AuditRecordTooLarge) and "over the 262144-byte cap" in str(err)
    assert isinstance(err, AuditWriteError)
    assert [r["event"] for r in tail(tmp_path, 5)] == ["small"]


def test_nan_and_infinity_are_written_as_standard_json(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    log.record("x", {"a": math.nan, "b": math.inf, "c": -math.inf, "d": [Decimal("NaN"), 1.5]})

    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    (f,) = _files(tmp_path)
    rec = json.loads(_lines(f)[0], parse_constant=refuse)
    assert rec["payload"] == {"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": ["NaN", 1.5]}


def test_keys_that_collide_as_text_are_refused_not_merged(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    with pytest.raises(AuditPayloadError, match="collide"):
        log.record("x", {"outer": {1: "int", "1": "str"}})
    assert tail(tmp_path, 5) == []


def test_circular_payload_raises_audit_write_error(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    loop: dict[str, Any] = {"a": 1}
    loop["self"] = loop
    with pytest.raises(AuditWriteError, match="circular"):
        log.record("x", loop)
    deep: list[Any] = []
    cur = deep
    for _ in range(500):
        cur.append([])
        cur = cur[0]
    with pytest.raises(AuditPayloadError, match="deeper"):
        log.record("x", {"deep": deep})
    shared = {"k": 1}
    log.record("ok", {"a": shared, "b": shared})  # the same object twice is not a cycle
    assert [r["event"] for r in tail(tmp_path, 5)] == ["ok"]
