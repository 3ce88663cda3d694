"""The audit log: append-only, hash-chained, fsynced JSON Lines, one file per UTC day.

Layout: ``<dir>/audit-YYYY-MM-DD.jsonl``. Each line is one record::

    {"ts": "...Z", "seq": 7, "event": "order.submitted", "ids": {...}, "payload": {...},
     "prev": "<sha256 of the previous record's line bytes>", "hash": "<sha256 of this record's content>"}

``hash`` covers the canonical JSON of every other field (including ``prev``), and ``prev`` is the
SHA-256 of the previous record's exact line bytes (without the newline; the first record has
`GENESIS`). Editing any field, deleting, inserting or reordering records therefore breaks
`verify`. ``seq`` is gapless across files and restarts.

`AuditLog.record` returns only after the line is written and ``os.fsync``'ed: that return is the
acknowledgement. Writers in one process (a thread lock) and across processes (``flock`` on
``<dir>/.audit.lock``) are serialised, and each re-reads the tail when another writer moved it.
A crash can leave a torn (partial) last line; the next writer terminates it and appends an
``audit.recovered`` record (length and SHA-256 of the torn bytes) chained to the last complete
record, so `verify` can tell a recovered crash from tampering. Payloads are redacted
(`joe.audit.redaction`) before they are written.

Integrity beyond the chain itself: timestamps never go backwards and a clock jump is recorded, not
followed (`joe.audit.clockguard`); an attached `AnchorStore` keeps the chain head in the store so a
deleted tail is detected (`joe.audit.anchor`); payloads are standard JSON or refused
(`joe.audit.encode`); a record larger than ``max_record_bytes`` is refused before the lock is taken.

A full disk: an append that meets ``ENOSPC`` truncates its torn bytes and frees the space reserve kept
in the directory (`joe.audit.reserve`, 1 MiB), writes again and chains an ``audit.disk_full`` record
after it; the disk-full listeners (`add_disk_full_listener`: the trading state moves to REDUCING,
`joe.safety.audit_disk`) hear of it once, outside the locks. Exits and cancels keep being audited in
the freed space; the reserve is made again (``audit.disk_space_back``) once the disk has room.

Listeners (`add_listener`) hear every acknowledged record, after the write and outside the locks: the
safety layer reads the brokers' own wire records (5xx and 429 answers, lost connections) this way,
whichever client wrote them. A record written by a listener is not heard again by listeners (no
feedback loop), and a failing listener never fails the write it follows.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from joe.audit.anchor import ANCHOR_FILE, Anchor, AnchorStore, FileAnchor
from joe.audit.chain import (
    BODY_KEYS,
    GENESIS,
    RECOVERED_EVENT,
    VerifyIssue,
    VerifyReport,
    canonical,
    content_hash,
    day_files,
    line_hash_at,
    sha256_hex,
    tail,
    verify,
)
from joe.audit.chain_end import ChainEnd, scan_chain_end
from joe.audit.clockguard import CLOCK_JUMP_EVENT, DEFAULT_MAX_GAP_DAYS, ClockGuard, format_ts, parse_ts
from joe.audit.encode import to_json_tree
from joe.audit.errors import AuditPayloadError, AuditRecordTooLarge, AuditWriteError
from joe.audit.redaction import redact, redact_text, register_secrets_from_env
from joe.audit.reserve import DEFAULT_RESERVE_BYTES, NO_SPACE, REARM_INTERVAL_S, SpaceReserve

__all__ = [
    "CLOCK_JUMP_EVENT",
    "DEFAULT_MAX_RECORD_BYTES",
    "GENESIS",
    "RECOVERED_EVENT",
    "AuditLog",
    "AuditPayloadError",
    "AuditRecord",
    "AuditRecordTooLarge",
    "AuditWriteError",
    "VerifyIssue",
    "VerifyReport",
    "tail",
    "verify",
]

LOCK_FILE = ".audit.lock"
ANCHOR_MISMATCH_EVENT = "audit.anchor_mismatch"
DISK_FULL_EVENT = "audit.disk_full"
DISK_SPACE_BACK_EVENT = "audit.disk_space_back"
# 256 KiB: far above any real record (an order event is ~1 KiB), small enough that writing one
# never holds the cross-process lock for more than a few milliseconds.
DEFAULT_MAX_RECORD_BYTES = 256 * 1024
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One acknowledged (durably written) audit record."""

    seq: int
    ts: str
    event: str
    ids: dict[str, str]
    payload: dict[str, Any]
    prev: str
    hash: str
    file: Path
    line_hash: str = ""  # SHA-256 of the written line (what the next record's prev and the anchor hold)

    def to_dict(self) -> dict[str, Any]:
        """The record as stored on disk (without the file name)."""
        return {k: getattr(self, k) for k in (*BODY_KEYS, "hash")}


class AuditLog:
    """Append-only, hash-chained audit log in `directory` (see the module docstring).

    `clock` returns the current time (UTC; injectable for tests) and `monotonic` the real elapsed
    seconds used to spot clock jumps (`time.monotonic` with the default clock; without one, only
    backwards readings are corrected). With ``fsync=False`` records are flushed to the OS but not
    forced to disk (tests and benchmarks only). A record whose JSON exceeds `max_record_bytes`
    raises `AuditRecordTooLarge`. `reserve_bytes` is the size of the space reserve freed when the
    disk fills (0: none; see the module docstring).
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        fsync: bool = True,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        max_clock_jump_s: float = 60.0,
        max_clock_gap_days: float = DEFAULT_MAX_GAP_DAYS,
        reserve_bytes: int = DEFAULT_RESERVE_BYTES,
    ) -> None:
        register_secrets_from_env()  # idempotent; masks env secrets even if nobody registered them yet
        self.directory = Path(directory)
        self.fsync = fsync
        self.max_record_bytes = max_record_bytes
        if clock is None:
            clock, monotonic = (lambda: datetime.now(UTC)), (monotonic or time.monotonic)
        self._guard = ClockGuard(
            clock, monotonic, max_jump_s=max_clock_jump_s, max_gap_days=max_clock_gap_days
        )
        self._anchor: AnchorStore | None = None
        self._listeners: list[Callable[[AuditRecord], None]] = []
        self._in_listener = threading.local()
        self.anchor_problem: str | None = None  # why the attached anchor is frozen (None: it is in step)
        self._tlock = threading.Lock()
        self._tail: ChainEnd | None = None
        self._reserve = SpaceReserve(self.directory, reserve_bytes)
        self._disk_full_listeners: list[Callable[[str], None]] = []
        self._space_freed: dict[str, Any] | None = None  # the reserve was just freed: not yet said
        self._reserve_used = False  # freed and not made again
        self._rearm_at = 0.0
        self.rearm_interval_s = REARM_INTERVAL_S
        lock_path = self.directory / LOCK_FILE
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd: int | None = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            with self._tlock, self._locked():
                head = self._refresh()  # find the chain's end now, so a broken directory fails at start-up
                self._file_anchor = FileAnchor(self.directory)
                self.file_anchor_problem = self._check_file_anchor(head)
            if self._reserve.size and not self._make_reserve():
                self._reserve_used = True  # a full disk at start: said at the first record's rearm try
                _log.error("audit log: no room for the %d-byte space reserve in %s", self._reserve.size,
                           self.directory)  # fmt: skip
        except OSError as e:
            raise AuditWriteError(lock_path, e) from e
        if self.file_anchor_problem is not None:
            _log.error("audit log: %s; %s stays as it is", self.file_anchor_problem, ANCHOR_FILE)
            self.record(ANCHOR_MISMATCH_EVENT, {"problem": self.file_anchor_problem, "anchor": ANCHOR_FILE})

    # -- public API ---------------------------------------------------------------------------
    def record(self, event_type: str, payload: Mapping[str, Any] | None = None, **ids: Any) -> AuditRecord:
        """Append one record and fsync it; returning is the acknowledgement.

        Raises `AuditWriteError` when the record could not be durably written: its subclasses
        `AuditPayloadError` (circular payload, keys that collide as text) and `AuditRecordTooLarge`
        are raised before anything is written or locked.
        """
        raw = payload if isinstance(payload, Mapping) or payload is None else {"value": payload}
        tree = to_json_tree(raw or {}, self.directory)
        id_tree = {k: str(to_json_tree(v, self.directory)) for k, v in ids.items() if v is not None}
        event = redact_text(str(event_type))
        # Measured before redaction (masks only shorten text), so a huge payload costs one dump.
        size = len(canonical({"event": event, "ids": id_tree, "payload": tree}))
        if size > self.max_record_bytes:
            raise AuditRecordTooLarge(
                self.directory,
                f"record {event!r} is {size} bytes, over the {self.max_record_bytes}-byte cap; "
                "store large data elsewhere (a file, the store) and audit a reference to it",
            )
        clean_payload, clean_ids = redact(tree), redact(id_tree)
        try:
            with self._tlock, self._locked():
                try:
                    state = self._refresh()
                    stamp = self._guard.stamp(state.ts)
                    if state.torn is not None or state.needs_newline:
                        self._repair(state, stamp.ts)
                    if stamp.jump is not None:
                        _log.warning("audit log: clock jump not followed: %s", stamp.jump)
                        self._append(state, CLOCK_JUMP_EVENT, stamp.jump, {}, ts=stamp.ts)
                    rec = last = self._append(state, event, clean_payload, clean_ids, ts=stamp.ts)
                    freed, self._space_freed = self._space_freed, None
                    if freed is not None:  # this append met the full disk: chained right after it
                        last = self._append(state, DISK_FULL_EVENT, {**freed, "at_seq": rec.seq}, {},
                                            ts=stamp.ts)  # fmt: skip
                    if self.file_anchor_problem is None:
                        self._file_anchor.write(
                            Anchor(last.seq, last.line_hash, last.ts, last.file.name), fsync=self.fsync
                        )
                except BaseException:
                    self._tail = None  # re-read the files next time: we may have left a torn line
                    raise
        except OSError as e:  # reading the tail or taking the lock failed
            raise AuditWriteError(self.directory, e) from e
        except AuditWriteError:
            freed, self._space_freed = self._space_freed, None
            if freed is not None:  # full beyond the reserve: still said, once
                self._tell_disk_full(freed)
            raise
        self._advance_anchor(last)
        self._tell(rec)
        if freed is not None:
            self._tell_disk_full(freed)
        elif self._reserve_used:
            self._try_rearm()
        return rec

    # -- a full disk ----------------------------------------------------------------------------
    @property
    def disk_full(self) -> bool:
        """True from the append that met a full disk (the reserve freed) until the reserve is made again."""
        return self._reserve_used

    def add_disk_full_listener(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call `listener(reason)` once each time an append meets a full disk (after the record, outside
        the locks; a failing listener is logged); returns the remover."""
        self._disk_full_listeners.append(listener)

        def remove() -> None:
            if listener in self._disk_full_listeners:
                self._disk_full_listeners.remove(listener)

        return remove

    def has_room(self) -> bool:
        """False while the disk is full: the space reserve is used up (freed by an append that met a
        full disk, or no room for it at start) and cannot be made again now. Asked before an entry is
        sent (`joe.safety.audit_disk.entry_gate`); tries to make the reserve again at once (an operator
        may have freed space), not every `rearm_interval_s` as a record does."""
        if self._reserve_used:
            self._rearm_at = 0.0
            self._try_rearm()
        return not self._reserve_used

    def _tell_disk_full(self, freed: dict[str, Any]) -> None:
        left = (
            f"the {freed['reserve_bytes']}-byte reserve was freed so exits and cancels can still be audited"
            if freed["reserve_bytes"]
            else "no space reserve was left to free: nothing more can be audited until space is freed"
        )
        reason = f"the audit disk is full ({freed['error']} writing {freed['file']}): {left}"
        _log.error("audit log: %s", reason)
        for listener in list(self._disk_full_listeners):
            try:
                listener(reason)
            except Exception as e:
                _log.warning("audit log: disk-full listener failed: %s", type(e).__name__)

    def _try_rearm(self) -> None:
        """Make the reserve again once the disk has room (at most every `rearm_interval_s`)."""
        now = time.monotonic()
        if now < self._rearm_at:
            return
        self._rearm_at = now + self.rearm_interval_s
        try:
            made = self._make_reserve()
        except OSError as e:
            _log.warning("audit log: space reserve not made: %s", e)
            return
        if made:
            self._reserve_used = False
            self.record(DISK_SPACE_BACK_EVENT, {"reserve_bytes": self._reserve.size})

    def _make_reserve(self) -> bool:
        """Create the reserve file (False: no room for it)."""
        return self._reserve.ensure(fsync=self.fsync)

    def _free_reserve(self) -> int:
        """Delete the reserve; the bytes it held (0: there was none)."""
        return self._reserve.release()

    def add_listener(self, listener: Callable[[AuditRecord], None]) -> Callable[[], None]:
        """Call `listener(record)` after every acknowledged record (see the module docstring);
        returns the remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _tell(self, rec: AuditRecord) -> None:
        if not self._listeners or getattr(self._in_listener, "on", False):
            return
        self._in_listener.on = True
        try:
            for listener in list(self._listeners):
                try:
                    listener(rec)
                except Exception as e:  # the record is durable; a listener's failure is only logged
                    _log.warning("audit log: listener failed on %s: %s", rec.event, type(e).__name__)
        finally:
            self._in_listener.on = False

    def attach_anchor(self, anchor: AnchorStore) -> str | None:
        """Keep the chain head in `anchor` from now on; returns a problem, or None when in step.

        When the stored anchor is ahead of the chain or names another record at its seq (records
        were deleted or replaced), the anchor is frozen — this writer never moves it, so every
        `verify` keeps reporting the break — and an ``audit.anchor_mismatch`` record is written.
        Outside the locks: the store may be waiting on another process that holds the audit lock.
        """
        stored = anchor.load_anchor()
        head_seq = self.last_seq
        problem: str | None = None
        if stored is not None:
            if stored.seq > head_seq:
                problem = f"the chain ends at seq {head_seq} but the store anchored seq {stored.seq}"
            elif line_hash_at(self.directory, stored.seq) != stored.line_hash:
                problem = f"seq {stored.seq} is not the record the store anchored"
        self._anchor, self.anchor_problem = anchor, problem
        if problem is not None:
            _log.error("audit log: %s (records deleted or replaced); the anchor stays frozen", problem)
            self.record(ANCHOR_MISMATCH_EVENT, {"problem": problem, "anchor_seq": stored and stored.seq})
        elif head_seq and (stored is None or stored.seq < head_seq) and (head := self._tail) is not None:
            # Anchor the head now, so a tail deleted before our next write is caught too.
            anchor.advance_anchor(
                Anchor(head.seq, head.line_hash, format_ts(head.ts) if head.ts else "", head.last_file or "")
            )
        return problem

    @property
    def last_seq(self) -> int:
        """The seq of the last record this instance knows of (0 for an empty log)."""
        with self._tlock, self._locked():
            return self._refresh().seq

    def close(self) -> None:
        """Release the lock file descriptor."""
        with self._tlock:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------
    def _check_file_anchor(self, head: ChainEnd) -> str | None:
        """Why ``audit.anchor`` does not describe this chain (None: it does, or there is nothing yet).

        A missing file where records exist is a problem, never repaired: recreating it would hide a tail
        deleted together with it. So is an anchor past the chain's end or naming another record.
        """
        present, anchor = self._file_anchor.load()
        if not present:
            return None if head.seq == 0 else f"{head.seq} records but no {ANCHOR_FILE}"
        if anchor is None:
            return f"{ANCHOR_FILE} is unreadable"
        if anchor.seq > head.seq:
            return f"the chain ends at seq {head.seq} but {ANCHOR_FILE} says seq {anchor.seq}"
        if line_hash_at(self.directory, anchor.seq) != anchor.line_hash:
            return f"seq {anchor.seq} is not the record {ANCHOR_FILE} holds"
        return None

    def _advance_anchor(self, rec: AuditRecord) -> None:
        if self._anchor is None or self.anchor_problem is not None:
            return
        try:
            self._anchor.advance_anchor(Anchor(rec.seq, rec.line_hash, rec.ts, rec.file.name))
        except Exception as e:  # the record is durable; a lagging anchor shows as a verify warning
            _log.warning("audit log: anchor not advanced to seq %d: %s", rec.seq, type(e).__name__)

    def _locked(self) -> _FileLock:
        if self._lock_fd is None:
            raise AuditWriteError(self.directory / LOCK_FILE, OSError(9, "audit log is closed"))
        return _FileLock(self._lock_fd)

    def _refresh(self) -> ChainEnd:
        """Return the chain state, re-reading the files when another writer appended meanwhile."""
        files = day_files(self.directory)
        t = self._tail
        if t is not None:
            if not files and t.last_file is None:
                return t
            if files and files[-1].name == t.last_file and files[-1].stat().st_size == t.last_size:
                return t
        self._tail = scan_chain_end(files)
        return self._tail

    def _repair(self, state: ChainEnd, ts: datetime) -> None:
        """Terminate a torn last line and, if there were torn bytes, chain an ``audit.recovered`` record."""
        assert state.last_file is not None
        path = self.directory / state.last_file
        prefix = b"\n" if state.needs_newline else b""
        state.needs_newline = False
        if state.torn is None:
            state.last_size = self._write(path, prefix)
            return
        torn, state.torn = state.torn, None
        payload = {
            "file": state.last_file,
            "torn_bytes": len(torn),
            "torn_sha256": sha256_hex(torn),
            "after_seq": state.seq,
        }
        _log.warning("audit log: torn tail of %d bytes before %s recovered", len(torn), state.last_file)
        if format_ts(ts)[:10] == state.last_file[6:16]:
            self._append(state, RECOVERED_EVENT, payload, {}, file=path, prefix=prefix, ts=ts)
        else:  # a record is filed under its own day (verify checks it): terminate the line, go on there
            if prefix:
                state.last_size = self._write(path, prefix)
            self._append(state, RECOVERED_EVENT, payload, {}, ts=ts)

    def _append(
        self,
        state: ChainEnd,
        event: str,
        payload: dict[str, Any],
        ids: dict[str, str],
        *,
        file: Path | None = None,
        prefix: bytes = b"",
        ts: datetime,
    ) -> AuditRecord:
        ts_text = format_ts(ts)
        if file is None:
            name = f"audit-{ts_text[:10]}.jsonl"
            # Never write to a file older than the newest one (a clock step back must not fork the order).
            if state.last_file is not None and name < state.last_file:
                name = state.last_file
            file = self.directory / name
        body: dict[str, Any] = {
            "ts": ts_text,
            "seq": state.seq + 1,
            "event": event,
            "ids": ids,
            "payload": payload,
            "prev": state.line_hash,
        }
        digest = content_hash(body)
        line = json.dumps(
            {**body, "hash": digest}, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        ).encode()
        size = self._write(file, prefix + line + b"\n")
        state.seq, state.line_hash, state.last_file, state.last_size, state.ts = (
            body["seq"],
            sha256_hex(line),
            file.name,
            size,
            parse_ts(ts_text),
        )
        return AuditRecord(
            seq=state.seq,
            ts=ts_text,
            event=event,
            ids=ids,
            payload=payload,
            prev=body["prev"],
            hash=digest,
            file=file,
            line_hash=state.line_hash,
        )

    def _write(self, path: Path, data: bytes) -> int:
        """Append `data` to `path` completely, fsync, and return the new file size. On a full disk
        the torn bytes are cut off, the space reserve is freed and the append is made again, once."""
        try:
            return self._append_bytes(path, data)
        except AuditWriteError as e:
            if e.errno not in NO_SPACE or self._space_freed is not None:
                raise
            try:
                held = self._free_reserve()
            except OSError:
                held = 0
            if not held and not self._reserve.size:
                raise  # no reserve kept (`reserve_bytes=0`): nothing to free, nothing to make again
            first, self._reserve_used = not self._reserve_used, True
            self._rearm_at = time.monotonic() + self.rearm_interval_s
            if not held:  # the reserve is used up: the record is lost, the full disk still said once
                if first:
                    self._space_freed = {"file": path.name, "error": errno_name(e.errno), "reserve_bytes": 0}
                raise
            self._space_freed = {"file": path.name, "error": errno_name(e.errno), "reserve_bytes": held}
            return self._append_bytes(path, data)

    def _append_bytes(self, path: Path, data: bytes) -> int:
        """One try of `_write`: a failed write leaves the file as it was (its torn bytes cut off)."""
        try:
            created = not path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            try:
                before = os.fstat(fd).st_size
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    if self.fsync:
                        os.fsync(fd)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, before)  # no torn record left behind
                    raise
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if created and self.fsync:  # make the new directory entry durable too
                dfd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            return size
        except OSError as e:
            raise AuditWriteError(path, e) from e


def errno_name(code: int | None) -> str:
    """``ENOSPC`` for 28 (the code as text when it has no name)."""
    return _errno.errorcode.get(code or 0, str(code))


class _FileLock:
    """Exclusive ``flock`` on the directory's lock file for the duration of a ``with`` block."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
