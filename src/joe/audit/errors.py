"""The audit log's one exception hierarchy: every failure to write a record is an `AuditWriteError`,
so callers fail closed on a single type."""

from __future__ import annotations

from pathlib import Path


class AuditWriteError(RuntimeError):
    """An audit record could not be durably written; callers must fail closed.

    `error` is the OS error (its ``errno`` is kept) or a plain-text reason.
    """

    def __init__(self, path: Path, error: OSError | str) -> None:
        self.path = path
        self.errno = error.errno if isinstance(error, OSError) else None
        reason = error if isinstance(error, str) else (error.strerror or str(error))
        super().__init__(f"audit write failed for {path}: {reason}")


class AuditPayloadError(AuditWriteError):
    """The payload cannot be written faithfully (circular, colliding keys, unencodable); nothing written."""


class AuditRecordTooLarge(AuditWriteError):
    """The record is larger than the log's ``max_record_bytes``; nothing written.

    The cap keeps one huge payload from holding the cross-process lock for seconds.
    """
