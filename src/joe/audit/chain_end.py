"""Where an audit chain ends on disk (`AuditLog` reads it under its lock before every append)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from joe.audit.chain import GENESIS, read_tail, sha256_hex
from joe.audit.clockguard import parse_ts


@dataclass(slots=True)
class ChainEnd:
    """Where the chain ends now, and what must be repaired before the next append."""

    seq: int = 0
    line_hash: str = GENESIS
    last_file: str | None = None
    last_size: int = 0
    # Unparseable bytes after the last complete record, normalised the way `verify` sees them
    # (lines joined by newlines); None when there are none.
    torn: bytes | None = None
    needs_newline: bool = False  # the last file does not end with a newline
    ts: datetime | None = None  # the last record's timestamp


def scan_chain_end(files: list[Path]) -> ChainEnd:
    """The end of the chain in the day `files` (oldest first): last seq, its line hash and time, and any
    torn bytes after it (a crash mid-write) that the next writer repairs."""
    if not files:
        return ChainEnd()
    last = files[-1]
    state = ChainEnd(last_file=last.name, last_size=last.stat().st_size)
    if state.last_size:
        with last.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            state.needs_newline = f.read(1) != b"\n"
    parts: list[bytes] = []
    line = None
    for path in reversed(files):  # normally only the last file is read
        line, trailing = read_tail(path)
        if trailing:
            parts.append(trailing[:-1] if trailing.endswith(b"\n") else trailing)
        if line is not None:
            break
    if parts:
        state.torn = b"\n".join(reversed(parts))
    if line is not None:
        rec = json.loads(line)
        state.seq = int(rec["seq"])
        state.line_hash = sha256_hex(line)
        state.ts = parse_ts(rec["ts"])
    return state
