"""A far-future (or far-past) clock reading is recorded, not followed — also as a process's FIRST
reading, with no monotonic reference yet (review of issue 11, point 3) — and `verify` reports a
future-dated file and a file whose name is not its records' day (point 6)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from joe.audit.chain import verify
from joe.audit.log import CLOCK_JUMP_EVENT, AuditLog

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

# One process writing `n` records; its clock is T0 + `minutes` + the monotonic time since start, and
# its first `bad` readings are off by `offset_days` (an unset RTC, a clock NTP has not stepped yet).
_CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timedelta, UTC
    from joe.audit.log import AuditLog
    d, minutes, offset_days, bad, n, tag = sys.argv[1:7]
    base = datetime.fromisoformat("T0") + timedelta(minutes=float(minutes))
    t0, calls = time.monotonic(), [0]
    def clock():
        calls[0] += 1
        off = timedelta(days=float(offset_days)) if calls[0] <= int(bad) else timedelta(0)
        return base + timedelta(seconds=time.monotonic() - t0) + off
    log = AuditLog(d, clock=clock, monotonic=time.monotonic, fsync=False)
    for i in range(int(n)):
        log.record("test.event", {"proc": tag, "i": i})
    """
).replace("T0", T0.isoformat())


def _process(d: Path, minutes: float, *, offset_days: float = 0, bad: int = 0, n: int = 3, tag: str) -> None:
    subprocess.run(
        [sys.executable, "-c", _CHILD, str(d), str(minutes), str(offset_days), str(bad), str(n), tag],
        check=True,
        timeout=120,
    )


def _records(d: Path) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for f in sorted(d.glob("audit-*.jsonl")):
        out += [json.loads(line) | {"_file": f.name} for line in f.read_text().splitlines()]
    return out


@pytest.mark.parametrize("offset_days", [3650, -3650, 400])
def test_a_far_first_reading_is_not_followed_across_processes(tmp_path: Path, offset_days: float) -> None:
    _process(tmp_path, 0, tag="p0")
    _process(tmp_path, 1, offset_days=offset_days, bad=1, tag="p1")  # only its first reading is wrong
    _process(tmp_path, 2, tag="p2")
    _process(tmp_path, 3, tag="p3")
    recs = _records(tmp_path)
    assert {r["_file"] for r in recs} == {"audit-2026-03-02.jsonl"}  # no far-future (or past) file
    jumps = [r for r in recs if r["event"] == CLOCK_JUMP_EVENT]
    assert len(jumps) == 1 and jumps[0]["payload"]["followed"] is False
    assert jumps[0]["payload"]["clock_read"][:4] == str((T0 + timedelta(days=offset_days)).year)
    by_proc = {r["payload"]["proc"]: r["ts"] for r in recs if r["event"] == "test.event"}
    # The later processes with a sane clock write the right time again (not dragged to 2036).
    assert by_proc["p2"].startswith("2026-03-02T10:02") and by_proc["p3"].startswith("2026-03-02T10:03")
    assert verify(tmp_path, now=T0 + timedelta(hours=1)).ok


def test_a_process_whose_clock_stays_far_ahead_is_never_followed(tmp_path: Path) -> None:
    _process(tmp_path, 0, tag="p0")
    _process(tmp_path, 1, offset_days=3650, bad=99, n=8, tag="p1")  # every reading 10 years ahead
    _process(tmp_path, 2, tag="p2")
    recs = _records(tmp_path)
    assert all(r["ts"].startswith("2026-03-02") for r in recs)
    assert [r["payload"]["followed"] for r in recs if r["event"] == CLOCK_JUMP_EVENT] == [False]
    assert verify(tmp_path, now=T0 + timedelta(hours=1)).ok


def test_an_ntp_step_within_the_bound_is_still_followed(tmp_path: Path) -> None:
    """The far bound does not freeze a real correction: a wrong start-up clock two hours behind."""
    _process(tmp_path, 0, tag="p0")
    _process(tmp_path, 180, n=5, tag="p1")  # three hours later: an ordinary gap between runs
    recs = _records(tmp_path)
    assert recs[-1]["ts"].startswith("2026-03-02T13:0")
    assert not [r for r in recs if r["event"] == CLOCK_JUMP_EVENT]


def test_verify_reports_a_future_dated_file(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False, clock=lambda: datetime(2036, 11, 27, tzinfo=UTC))
    log.record("test.event", {})  # an empty chain has nothing to compare the clock with
    report = verify(tmp_path, now=T0)
    assert not report.ok and report.first_break is not None
    assert report.first_break.reason == "future-dated file"
    assert verify(tmp_path, now=datetime(2036, 11, 27, 1, tzinfo=UTC)).ok


def test_a_file_renamed_to_another_day_breaks_verify(tmp_path: Path) -> None:
    clock = iter([T0 + timedelta(days=i) for i in range(10)])
    log = AuditLog(tmp_path, fsync=False, clock=lambda: next(clock))
    for i in range(3):
        log.record("test.event", {"i": i})  # three files, one per day
    files = sorted(tmp_path.glob("audit-*.jsonl"))
    assert verify(tmp_path, now=T0 + timedelta(days=5)).ok
    files[-1].rename(tmp_path / "audit-2026-03-01.jsonl")  # the last day filed under an earlier day
    report = verify(tmp_path, now=T0 + timedelta(days=5))
    assert not report.ok and report.first_break is not None
    files[1].rename(tmp_path / "audit-2026-03-05.jsonl")  # and the middle one under a later day
    (tmp_path / "audit-2026-03-01.jsonl").unlink()
    report = verify(tmp_path, now=T0 + timedelta(days=5))
    assert not report.ok and report.first_break is not None
    assert report.first_break.reason == "record older than its file"


def test_a_torn_line_recovered_on_the_next_day_keeps_the_chain_whole(tmp_path: Path) -> None:
    day1 = AuditLog(tmp_path, fsync=False, clock=lambda: T0)
    day1.record("test.event", {"i": 1})
    with (tmp_path / "audit-2026-03-02.jsonl").open("ab") as f:
        f.write(b'{"ts": "2026-03-02T10:00:0')  # a crash mid-write
    day2 = AuditLog(tmp_path, fsync=False, clock=lambda: T0 + timedelta(days=1))
    day2.record("test.event", {"i": 2})
    report = verify(tmp_path, now=T0 + timedelta(days=1))
    assert report.ok, report.first_break
    assert [w.reason for w in report.warnings] == ["torn line recovered"]
