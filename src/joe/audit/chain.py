"""The audit chain's on-disk format: canonical hashing, parsing, reading, `verify` and `tail`.

`joe.audit.log.AuditLog` writes the chain; this module holds what both the writer and the
readers need to agree on (see `joe.audit.log` for the format).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from joe.audit.anchor import ANCHOR_FILE, Anchor, FileAnchor

GENESIS = "0" * 64
RECOVERED_EVENT = "audit.recovered"
FILE_RE = re.compile(r"^audit-(\d{4}-\d{2}-\d{2})\.jsonl$")
BODY_KEYS = ("ts", "seq", "event", "ids", "payload", "prev")
_CHUNK = 64 * 1024
# How far after the verifier's clock a record may be dated: clocks of two machines differ by seconds,
# a day is generous and still catches any far-future reading.
FUTURE_TOLERANCE = timedelta(days=1)


def format_day(ts: datetime) -> str:
    """``YYYY-MM-DD`` of `ts` in UTC (the day part of a record's ``ts`` and of a file name)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%d")


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, no spaces, ASCII) — the input of `content_hash`."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def content_hash(rec: Mapping[str, Any]) -> str:
    """The record's ``hash``: SHA-256 over the canonical JSON of every field but ``hash``."""
    return hashlib.sha256(canonical({k: rec[k] for k in BODY_KEYS})).hexdigest()


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of `data` (a record's ``prev`` is this over the previous line's bytes)."""
    return hashlib.sha256(data).hexdigest()


def parse_line(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """Parse one line into a record dict, or (None, reason) when it is not a well-formed record."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None, "bad json"
    if not (
        isinstance(rec, dict)
        and all(k in rec for k in (*BODY_KEYS, "hash"))
        and isinstance(rec["seq"], int)
        and isinstance(rec["hash"], str)
        and isinstance(rec["prev"], str)
        and isinstance(rec["payload"], dict)
    ):
        return None, "bad record"
    return rec, ""


def day_files(directory: Path) -> list[Path]:
    """The ``audit-YYYY-MM-DD.jsonl`` files of `directory`, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if FILE_RE.match(p.name))


def read_tail(path: Path) -> tuple[bytes | None, bytes]:
    """Find the last well-formed record line of `path`, reading backwards.

    Returns (that line or None, the bytes after it and its newline).
    """
    with path.open("rb") as f:
        pos = f.seek(0, os.SEEK_END)
        buf = b""
        while True:
            step = min(_CHUNK, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + buf
            lines = buf.split(b"\n")
            first = 0 if pos == 0 else 1  # the first piece may be a partial line unless at offset 0
            end = len(buf)
            for idx in range(len(lines) - 1, first - 1, -1):
                start = end - len(lines[idx])
                if parse_line(lines[idx])[0] is not None:
                    return lines[idx], buf[end + 1 :]
                end = start - 1
            if pos == 0:
                return None, buf


@dataclass(frozen=True, slots=True)
class VerifyIssue:
    """A break or warning found by `verify`: where (file, 1-based line) and why."""

    file: str
    line: int
    reason: str
    detail: str = ""


@dataclass(slots=True)
class VerifyReport:
    """The result of `verify`: ``ok`` is False exactly when ``first_break`` is set."""

    ok: bool
    records: int
    files: list[str]
    last_seq: int
    first_break: VerifyIssue | None = None
    warnings: list[VerifyIssue] = field(default_factory=list)
    anchor_seq: int | None = None  # the store's anchor the chain was checked against (None: none)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``joe audit verify --json``)."""
        return dataclasses.asdict(self)


def verify(
    directory: Path | str, anchor: Anchor | None = None, *, now: datetime | None = None
) -> VerifyReport:
    """Walk every day file in order and check hashes, the prev chain, seq continuity, timestamps
    (never backwards, on the day its file is named after — a file renamed to another day breaks —, and
    not after `now` + `FUTURE_TOLERANCE`: a far-future file is reported) and, given the store's
    `anchor`, the tail.

    With an anchor, a chain that ends before the anchor's seq ("tail missing") or holds another
    record at that seq ("anchor mismatch") is broken; records after the anchor are a warning (a crash
    between the audit write and the store commit). Unparseable lines directly followed by a matching
    ``audit.recovered`` record are warnings
    ("torn line recovered"); unparseable lines at the very end are a "torn tail" warning (a crash
    not yet recovered). Anything else that does not chain is the first break.
    """
    files = day_files(Path(directory))
    horizon = format_day((now or datetime.now(UTC)) + FUTURE_TOLERANCE)
    report = VerifyReport(ok=True, records=0, files=[f.name for f in files], last_seq=0)
    prev, seq, last_ts = GENESIS, 0, ""
    anchored_hash: str | None = None
    file_present, file_anchor = FileAnchor(directory).load()
    file_anchored_hash: str | None = None
    if anchor is not None:
        report.anchor_seq = anchor.seq
    pending: list[tuple[str, int, bytes, str]] = []  # unparseable lines awaiting a recovery record

    def broken(file: str, line: int, reason: str, detail: str = "") -> VerifyReport:
        report.ok, report.first_break = False, VerifyIssue(file, line, reason, detail)
        return report

    for path in files:
        named = FILE_RE.match(path.name)
        if named is not None and named.group(1) > horizon:
            return broken(path.name, 0, "future-dated file", f"named after {named.group(1)}, after today")
        lines = path.read_bytes().split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        for lineno, line in enumerate(lines, 1):
            rec, why = parse_line(line)
            if rec is None:
                pending.append((path.name, lineno, line, why))
                continue
            if pending:
                torn = b"\n".join(p[2] for p in pending)
                pl = rec["payload"]
                if not (
                    rec["event"] == RECOVERED_EVENT
                    and pl.get("torn_sha256") == sha256_hex(torn)
                    and pl.get("torn_bytes") == len(torn)
                ):
                    f0, l0, _, why0 = pending[0]
                    return broken(f0, l0, why0, "unparseable line not followed by a matching audit.recovered")
                report.warnings.append(
                    VerifyIssue(
                        pending[0][0],
                        pending[0][1],
                        "torn line recovered",
                        f"{len(torn)} bytes, recovered at {path.name}:{lineno}",
                    )
                )
                pending = []
            if rec["hash"] != content_hash(rec):
                return broken(path.name, lineno, "hash mismatch", f"seq {rec['seq']}")
            if rec["prev"] != prev:
                return broken(
                    path.name, lineno, "prev mismatch", f"seq {rec['seq']} does not chain to seq {seq}"
                )
            if rec["seq"] != seq + 1:
                return broken(path.name, lineno, "seq gap", f"expected {seq + 1}, found {rec['seq']}")
            ts = str(rec["ts"])
            if ts < last_ts:
                return broken(
                    path.name, lineno, "timestamp went backwards", f"seq {rec['seq']}: {ts} < {last_ts}"
                )
            day = FILE_RE.match(path.name)
            if day is not None and ts[:10] < day.group(1):
                return broken(path.name, lineno, "record older than its file", f"seq {rec['seq']}: {ts}")
            if day is not None and ts[:10] > day.group(1):
                return broken(
                    path.name, lineno, "record newer than its file", f"seq {rec['seq']}: {ts} (file renamed?)"
                )
            if ts[:10] > horizon:
                return broken(
                    path.name,
                    lineno,
                    "future-dated record",
                    f"seq {rec['seq']}: {ts} is after today ({horizon} with a day's tolerance): "
                    "a wrong clock "
                    "was followed or the record was forged",
                )
            prev, seq, last_ts = sha256_hex(line), rec["seq"], ts
            if anchor is not None and seq == anchor.seq:
                anchored_hash = prev
            if file_anchor is not None and seq == file_anchor.seq:
                file_anchored_hash = prev
            report.records += 1
            report.last_seq = seq
    if anchor is not None:
        last_file = report.files[-1] if report.files else ""
        if seq < anchor.seq:
            return broken(
                last_file,
                0,
                "tail missing",
                f"the chain ends at seq {seq} but the store's anchor says seq {anchor.seq} "
                f"({anchor.ts}) was written: records were deleted",
            )
        if anchored_hash != anchor.line_hash:
            return broken(
                anchor.file, 0, "anchor mismatch", f"seq {anchor.seq} is not the record the store anchored"
            )
        if seq > anchor.seq:
            report.warnings.append(
                VerifyIssue(
                    last_file, 0, "after anchor", f"{seq - anchor.seq} record(s) after the store's anchor"
                )
            )
    # The copy beside the day files: it must exist once there are records, and match like the store's.
    if report.records and not file_present:
        return broken(
            ANCHOR_FILE,
            0,
            "anchor file missing",
            f"{report.records} records but no {ANCHOR_FILE} (the chain head kept beside them): records may "
            "have been deleted with it; a folder written before anchor files existed shows this too",
        )
    if file_present and file_anchor is None:
        return broken(ANCHOR_FILE, 0, "anchor file unreadable", f"{ANCHOR_FILE} is not an anchor")
    if file_anchor is not None:
        if seq < file_anchor.seq:
            return broken(
                report.files[-1] if report.files else "",
                0,
                "tail missing",
                f"the chain ends at seq {seq} but {ANCHOR_FILE} says seq {file_anchor.seq} "
                f"({file_anchor.ts}) was written: records were deleted",
            )
        if file_anchored_hash != file_anchor.line_hash:
            return broken(
                file_anchor.file,
                0,
                "anchor mismatch",
                f"seq {file_anchor.seq} is not the record {ANCHOR_FILE} holds",
            )
        if seq > file_anchor.seq + 1:  # one record ahead: a crash between the record and its anchor
            report.warnings.append(
                VerifyIssue(
                    ANCHOR_FILE, 0, "after anchor file", f"{seq - file_anchor.seq} record(s) after it"
                )
            )
    if pending:
        size = len(b"\n".join(p[2] for p in pending))
        report.warnings.append(
            VerifyIssue(
                pending[0][0],
                pending[0][1],
                "torn tail",
                f"{size} bytes after seq {seq} (crash; recovered by the next writer)",
            )
        )
    return report


def tail(directory: Path | str, n: int = 20) -> list[dict[str, Any]]:
    """The last `n` well-formed records (oldest first) across the day files."""
    out: list[dict[str, Any]] = []
    for path in reversed(day_files(Path(directory))):
        for line in reversed(path.read_bytes().split(b"\n")):
            if len(out) >= n:
                return out[::-1]
            rec = parse_line(line)[0] if line else None
            if rec is not None:
                out.append(rec)
    return out[::-1]


def line_hash_at(directory: Path | str, seq: int) -> str | None:
    """SHA-256 of the line bytes of the record with `seq` (newest files first); None if absent."""
    for path in reversed(day_files(Path(directory))):
        found_lower = False
        for line in reversed(path.read_bytes().split(b"\n")):
            rec = parse_line(line)[0] if line else None
            if rec is None:
                continue
            if rec["seq"] == seq:
                return sha256_hex(line)
            if rec["seq"] < seq:
                found_lower = True
                break
        if found_lower:
            return None
    return None
