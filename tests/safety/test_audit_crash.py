"""Crash test: SIGKILL audit writers at random moments; every acknowledged record must survive."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from joe.audit.log import verify

CHILD = Path(__file__).with_name("_audit_child.py")
ITERATIONS = 100


def _records(directory: Path) -> list[tuple[str, int, dict]]:
    out = []
    for path in sorted(directory.glob("audit-*.jsonl")):
        for lineno, line in enumerate(path.read_bytes().split(b"\n"), 1):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            out.append((path.name, lineno, rec))
    return out


@pytest.mark.slow
def test_sigkill_at_random_moments_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    rng = random.Random(20240601)  # seeded: the same kill schedule every run
    acknowledged: list[int] = []
    torn_injected = 0
    for i in range(ITERATIONS):
        files = sorted(tmp_path.glob("audit-*.jsonl"))
        if i % 10 == 5 and files:
            # A SIGKILL almost never tears a write(); a power cut does. Simulate one now and then.
            with files[-1].open("ab") as f:
                f.write(b'{"ts":"2030-01-01T00:00:00.000000Z","seq":'[: rng.randint(1, 40)])
            torn_injected += 1
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(tmp_path), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        first = b""
        if i % 2:
            # Kill some time after the first acknowledgement: progress even on a loaded machine.
            assert child.stdout is not None
            first = child.stdout.readline()
            time.sleep(rng.uniform(0.0, 0.1))
        else:
            # Kill blindly 20-150 ms after spawn: often during start-up, open or recovery.
            time.sleep(rng.uniform(0.02, 0.15))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate()
        out = first + out
        # The child loops forever: any other exit means it crashed on its own (e.g. failed recovery).
        assert child.returncode == -signal.SIGKILL, err.decode()
        # Only complete lines count: the kill may land between write() and the newline.
        acknowledged += [int(line) for line in out.decode().splitlines(keepends=True) if line.endswith("\n")]

    assert acknowledged, "no child ever acknowledged a record"
    assert acknowledged == sorted(set(acknowledged)), "seq must increase across restarts"

    report = verify(tmp_path)
    assert report.ok, report.first_break
    assert all(w.reason in {"torn line recovered", "torn tail"} for w in report.warnings)
    # Each injection precedes an odd child, which recovers it before its first ack (a natural torn
    # write would add one more).
    assert sum(w.reason == "torn line recovered" for w in report.warnings) >= torn_injected
    records = _records(tmp_path)
    stored = [rec["seq"] for _, _, rec in records]
    assert stored == list(range(1, report.last_seq + 1))
    assert set(acknowledged) <= set(stored)

    # And a tampered record is still detected afterwards, at its line.
    file, lineno, rec = records[len(records) // 2]
    path = tmp_path / file
    lines = path.read_bytes().split(b"\n")
    rec["payload"]["tampered"] = True
    lines[lineno - 1] = json.dumps(rec, separators=(",", ":")).encode()
    path.write_bytes(b"\n".join(lines))
    broken = verify(tmp_path)
    assert not broken.ok
    assert broken.first_break is not None
    assert (broken.first_break.file, broken.first_break.line) == (file, lineno)
    assert broken.first_break.reason == "hash mismatch"


def test_concurrent_processes_do_not_fork_the_chain(tmp_path: Path) -> None:
    children = [
        subprocess.Popen([sys.executable, str(CHILD), str(tmp_path), str(seed), "40"], stdout=subprocess.PIPE)
        for seed in range(3)
    ]
    acked: list[int] = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        acked += [int(x) for x in out.split()]
    assert sorted(acked) == list(range(1, 121))
    report = verify(tmp_path)
    assert report.ok, report.first_break
    assert report.records == 120
    assert report.warnings == []
