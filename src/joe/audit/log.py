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
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from joe.audit.chain import (
    BODY_KEYS,
    GENESIS,
    RECOVERED_EVENT,
    VerifyIssue,
    VerifyReport,
    content_hash,
    day_files,
    read_tail,
    sha256_hex,
    tail,
    verify,
)
from joe.audit.redaction import redact, redact_text, register_secrets_from_env

__all__ = [
    "GENESIS",
    "RECOVERED_EVENT",
    "AuditLog",
    "AuditRecord",
    "AuditWriteError",
    "VerifyIssue",
    "VerifyReport",
    "tail",
    "verify",
]

LOCK_FILE = ".audit.lock"
_log = logging.getLogger(__name__)


class AuditWriteError(RuntimeError):
    """An audit record could not be durably written; callers must fail closed."""

    def __init__(self, path: Path, error: OSError) -> None:
        self.path = path
        self.errno = error.errno
        super().__init__(f"audit write failed for {path}: {error.strerror or error}")


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

    def to_dict(self) -> dict[str, Any]:
        """The record as stored on disk (without the file name)."""
        return {k: getattr(self, k) for k in (*BODY_KEYS, "hash")}


def _jsonable(obj: Any) -> Any:
    """Convert `obj` to plain JSON types (Decimal, datetime, Enum, dataclasses, pydantic, sets...)."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, Enum):
        return _jsonable(obj.value)
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, date | time):
        return obj.isoformat()
    if isinstance(obj, Mapping):
        return {k if isinstance(k, str) else str(_jsonable(k)): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted((_jsonable(v) for v in obj), key=str)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if hasattr(obj, "model_dump"):  # pydantic models
        return _jsonable(obj.model_dump(mode="json"))
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, BaseException):
        return f"{type(obj).__name__}: {obj}"
    return str(obj)


@dataclass(slots=True)
class _Tail:
    """Where the chain ends now, and what must be repaired before the next append."""

    seq: int = 0
    line_hash: str = GENESIS
    last_file: str | None = None
    last_size: int = 0
    # Unparseable bytes after the last complete record, normalised the way `verify` sees them
    # (lines joined by newlines); None when there are none.
    torn: bytes | None = None
    needs_newline: bool = False  # the last file does not end with a newline


def _scan(files: list[Path]) -> _Tail:
    if not files:
        return _Tail()
    last = files[-1]
    state = _Tail(last_file=last.name, last_size=last.stat().st_size)
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
        state.seq = int(json.loads(line)["seq"])
        state.line_hash = sha256_hex(line)
    return state


def _format_ts(ts: datetime) -> str:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """Append-only, hash-chained audit log in `directory` (see the module docstring).

    `clock` returns the current time (UTC; injectable for tests). With ``fsync=False`` records are
    flushed to the OS but not forced to disk (tests and benchmarks only).
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        fsync: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        register_secrets_from_env()  # idempotent; masks env secrets even if nobody registered them yet
        self.directory = Path(directory)
        self.fsync = fsync
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tlock = threading.Lock()
        self._tail: _Tail | None = None
        lock_path = self.directory / LOCK_FILE
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd: int | None = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            with self._tlock, self._locked():
                self._refresh()  # find the chain's end now, so a broken directory fails at start-up
        except OSError as e:
            raise AuditWriteError(lock_path, e) from e

    # -- public API ---------------------------------------------------------------------------
    def record(self, event_type: str, payload: Mapping[str, Any] | None = None, **ids: Any) -> AuditRecord:
        """Append one record and fsync it; returning is the acknowledgement.

        Raises `AuditWriteError` when the record could not be durably written.
        """
        clean_payload = _jsonable(
            payload if isinstance(payload, Mapping) or payload is None else {"value": payload}
        )
        clean_payload = redact(clean_payload or {})
        clean_ids = redact({k: str(_jsonable(v)) for k, v in ids.items() if v is not None})
        event = redact_text(str(event_type))
        try:
            with self._tlock, self._locked():
                try:
                    state = self._refresh()
                    if state.torn is not None or state.needs_newline:
                        self._repair(state)
                    return self._append(state, event, clean_payload, clean_ids)
                except BaseException:
                    self._tail = None  # re-read the files next time: we may have left a torn line
                    raise
        except OSError as e:  # reading the tail or taking the lock failed
            raise AuditWriteError(self.directory, e) from e

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
    def _locked(self) -> _FileLock:
        if self._lock_fd is None:
            raise AuditWriteError(self.directory / LOCK_FILE, OSError(9, "audit log is closed"))
        return _FileLock(self._lock_fd)

    def _refresh(self) -> _Tail:
        """Return the chain state, re-reading the files when another writer appended meanwhile."""
        files = day_files(self.directory)
        t = self._tail
        if t is not None:
            if not files and t.last_file is None:
                return t
            if files and files[-1].name == t.last_file and files[-1].stat().st_size == t.last_size:
                return t
        self._tail = _scan(files)
        return self._tail

    def _repair(self, state: _Tail) -> None:
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
        self._append(state, RECOVERED_EVENT, payload, {}, file=path, prefix=prefix)

    def _append(
        self,
        state: _Tail,
        event: str,
        payload: dict[str, Any],
        ids: dict[str, str],
        *,
        file: Path | None = None,
        prefix: bytes = b"",
    ) -> AuditRecord:
        ts = _format_ts(self._clock())
        if file is None:
            name = f"audit-{ts[:10]}.jsonl"
            # Never write to a file older than the newest one (a clock step back must not fork the order).
            if state.last_file is not None and name < state.last_file:
                name = state.last_file
            file = self.directory / name
        body: dict[str, Any] = {
            "ts": ts,
            "seq": state.seq + 1,
            "event": event,
            "ids": ids,
            "payload": payload,
            "prev": state.line_hash,
        }
        digest = content_hash(body)
        line = json.dumps({**body, "hash": digest}, separators=(",", ":"), ensure_ascii=True).encode()
        size = self._write(file, prefix + line + b"\n")
        state.seq, state.line_hash, state.last_file, state.last_size = (
            body["seq"],
            sha256_hex(line),
            file.name,
            size,
        )
        return AuditRecord(
            seq=state.seq,
            ts=ts,
            event=event,
            ids=ids,
            payload=payload,
            prev=body["prev"],
            hash=digest,
            file=file,
        )

    def _write(self, path: Path, data: bytes) -> int:
        """Append `data` to `path` completely, fsync, and return the new file size."""
        try:
            created = not path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
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


class _FileLock:
    """Exclusive ``flock`` on the directory's lock file for the duration of a ``with`` block."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
