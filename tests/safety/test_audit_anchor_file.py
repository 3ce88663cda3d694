"""The chain head kept a second time, beside the day files (review of issue 11, point 6): deleting the
store's anchor row — or the whole store — together with the tail is still detected, a missing anchor
file where records exist is BROKEN, and no writer recreates it to hide the gap."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from joe.audit.anchor import ANCHOR_FILE, FileAnchor, StoreAnchor
from joe.audit.log import ANCHOR_MISMATCH_EVENT, AuditLog, verify
from joe.store import open_store


def _log_with_store(data: Path, n: int) -> None:
    store = open_store(data_dir=data)
    log = AuditLog(data / "audit", fsync=False)
    log.attach_anchor(StoreAnchor(store))
    for i in range(n):
        log.record("order.fill" if i % 3 == 2 else "order.ack", {"i": i})
    log.close()
    store.close()


def _drop_last_line(audit: Path) -> None:
    f = sorted(audit.glob("audit-*.jsonl"))[-1]
    lines = f.read_bytes().splitlines(keepends=True)
    f.write_bytes(b"".join(lines[:-1]))


@pytest.mark.parametrize("store_damage", ["anchor row deleted", "store deleted", "store intact"])
def test_a_deleted_tail_is_caught_whatever_happened_to_the_store(tmp_path: Path, store_damage: str) -> None:
    _log_with_store(tmp_path, 9)
    audit = tmp_path / "audit"
    assert verify(audit).ok and FileAnchor(audit).load()[1].seq == 9  # type: ignore[union-attr]
    _drop_last_line(audit)
    if store_damage == "anchor row deleted":
        store = open_store(data_dir=tmp_path)
        store.set_state("audit.anchor", None)
        store.close()
    elif store_damage == "store deleted":
        (tmp_path / "joe.db").unlink()
    report = verify(audit)  # `joe audit verify` without any store anchor
    assert not report.ok and report.first_break is not None
    assert report.first_break.reason == "tail missing" and ANCHOR_FILE in report.first_break.detail


def test_a_missing_anchor_file_where_records_exist_is_broken_and_stays_so(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    for i in range(4):
        log.record("order.ack", {"i": i})
    log.close()
    (tmp_path / ANCHOR_FILE).unlink()
    _drop_last_line(tmp_path)
    report = verify(tmp_path)
    assert (
        not report.ok
        and report.first_break is not None
        and report.first_break.reason == "anchor file missing"
    )
    # The next writer does not recreate it (that would hide the deletion); it says so in the chain.
    again = AuditLog(tmp_path, fsync=False)
    assert again.file_anchor_problem is not None
    again.record("order.ack", {"i": 99})
    assert not (tmp_path / ANCHOR_FILE).exists()
    assert not verify(tmp_path).ok
    events = [
        json.loads(line)["event"]
        for f in tmp_path.glob("audit-*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert ANCHOR_MISMATCH_EVENT in events


def test_an_anchor_file_past_the_chain_or_naming_another_record_is_broken(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    for i in range(5):
        log.record("order.ack", {"i": i})
    log.close()
    shutil.copy(tmp_path / ANCHOR_FILE, tmp_path / "saved")
    # Replace the last record with another one that chains: same seq, other content.
    _drop_last_line(tmp_path)
    (tmp_path / ANCHOR_FILE).write_bytes((tmp_path / "saved").read_bytes())
    again = AuditLog(tmp_path, fsync=False)
    assert again.file_anchor_problem is not None and "seq 5" in again.file_anchor_problem
    report = verify(tmp_path)
    assert not report.ok


def test_unrelated_files_and_a_fresh_folder_are_fine(tmp_path: Path) -> None:
    assert verify(tmp_path).ok  # nothing yet, no anchor needed
    log = AuditLog(tmp_path, fsync=False)
    log.record("order.ack", {})
    (tmp_path / "notes.txt").write_text("{}")
    assert verify(tmp_path).ok
