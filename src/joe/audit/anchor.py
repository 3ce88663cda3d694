"""An independent anchor of the audit chain's head, kept in the store.

The chain alone cannot prove its own tail: delete the last records and what remains still chains.
So every write also advances an anchor — the last record's ``seq`` and line hash — in Joe's
database (`StoreAnchor`, the ``audit.anchor`` key of the key-value state). A write made inside
``store.atomic()`` advances the anchor in that same transaction, so the anchor is committed with
the state the record describes. `joe.audit.chain.verify` checks the chain against it: a chain that
ends before the anchor, or holds a different record at the anchor's seq, is broken.

An anchor that does not match the chain is never moved by a writer (see `AuditLog.attach_anchor`):
once a tail went missing, every later `verify` keeps saying so.

A second copy of the head lives beside the day files, in ``<audit dir>/audit.anchor`` (`FileAnchor`),
rewritten in place and fsynced after every record under the audit lock: deleting the store (or its
anchor row) together with the tail is still detected, and a chain that has records but no anchor
file is broken (`verify`) — a writer never recreates a missing one, so the gap stays visible.

Cost: a write outside a transaction commits the anchor on its own, *without waiting for the disk*
(`Store.atomic(durable=False)`). That is safe because the record itself is fsynced before the
anchor is written, so the anchor can never be ahead of the durable chain; a power loss can only roll
the anchor back to an older head, which `verify` accepts (a chain that goes on past its anchor is
whole). Against deletion the anchor is as good as before: it is visible to every reader the moment
`record` returns. Measured by ``bench/safety_bench.py`` (fsynced write with the anchor: ~21 → ~12 ms
here under load, the audit fsync alone ~7 ms).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from joe.store import Store

ANCHOR_KEY = "audit.anchor"
# The second copy, beside the day files (not matching their name pattern): survives a deleted store.
ANCHOR_FILE = "audit.anchor"
_ANCHOR_FILE_SIZE = 512  # rewritten in place at offset 0: one sector, no rename, no directory fsync


@dataclass(frozen=True, slots=True)
class Anchor:
    """The chain head as last committed: seq, SHA-256 of the record's line bytes, its ts and file."""

    seq: int
    line_hash: str
    ts: str
    file: str

    @classmethod
    def from_dict(cls, raw: Any) -> Anchor | None:
        """Parse a stored value; None when it is missing or malformed."""
        if not isinstance(raw, dict):
            return None
        try:
            return cls(int(raw["seq"]), str(raw["line_hash"]), str(raw["ts"]), str(raw["file"]))
        except (KeyError, TypeError, ValueError):
            return None


class AnchorStore(Protocol):
    """Where the anchor lives (the store in production, a dict in unit tests)."""

    def load_anchor(self) -> Anchor | None: ...

    def advance_anchor(self, anchor: Anchor) -> None:
        """Store `anchor` unless the stored one has a higher seq (several writers may race)."""
        ...


class StoreAnchor:
    """`AnchorStore` on Joe's store (key ``audit.anchor`` in ``kv_state``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load_anchor(self) -> Anchor | None:
        return Anchor.from_dict(self.store.get_state(ANCHOR_KEY))

    def advance_anchor(self, anchor: Anchor) -> None:
        # Joins the caller's transaction when there is one (committed with the state it describes);
        # else a commit that does not wait for the disk (see the module docstring).
        # One conditional statement (`Store.advance_state`): this runs for every audit record.
        self.store.advance_state(ANCHOR_KEY, asdict(anchor), durable=False)


class MemoryAnchor:
    """An in-memory `AnchorStore` (tests, tools)."""

    def __init__(self, anchor: Anchor | None = None) -> None:
        self.anchor = anchor

    def load_anchor(self) -> Anchor | None:
        return self.anchor

    def advance_anchor(self, anchor: Anchor) -> None:
        if self.anchor is None or self.anchor.seq < anchor.seq:
            self.anchor = anchor


class FileAnchor:
    """The chain head in ``<audit dir>/audit.anchor`` (see the module docstring).

    `load` returns (exists?, anchor or None when unreadable); `write` rewrites it in place and
    fsyncs (``fsync=False`` for tests and benchmarks).
    """

    def __init__(self, directory: Path | str) -> None:
        self.path = Path(directory) / ANCHOR_FILE

    def load(self) -> tuple[bool, Anchor | None]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return os.path.lexists(self.path), None
        except OSError:
            return True, None
        try:
            return True, Anchor.from_dict(json.loads(raw.decode("utf-8").strip() or "null"))
        except (UnicodeDecodeError, ValueError):
            return True, None

    def write(self, anchor: Anchor, *, fsync: bool = True) -> None:
        data = json.dumps(asdict(anchor), separators=(",", ":")).encode()
        data = data.ljust(_ANCHOR_FILE_SIZE - 1) + b"\n"
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            os.pwrite(fd, data, 0)
            if os.fstat(fd).st_size > len(data):
                os.ftruncate(fd, len(data))
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if created and fsync:
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
