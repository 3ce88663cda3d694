"""The audit log's space reserve: a file of `DEFAULT_RESERVE_BYTES` kept in the audit directory
(``<dir>/.audit.reserve``) and given back to the filesystem the moment an append meets a full disk.

Why: when the disk is full, Joe must still be able to close positions and cancel orders (exits stay
allowed, principle 3), and every one of those actions is audited before it is sent (principle 4).
Without room for their records the exits could not be sent at all. With the reserve, the append that
meets ``ENOSPC`` (or ``EDQUOT``) truncates its torn bytes, deletes the reserve and writes again: about
a thousand records (~1 KiB each) of room, for the exits, the cancels, the refusals of new entries and
the trading state's move to REDUCING (`joe.safety.audit_disk`). The reserve is made again once the
disk has room (`AuditLog` tries at most every `REARM_INTERVAL_S` seconds while it is used up).

The file's blocks are allocated for real (``posix_fallocate``; zeros written where the filesystem
cannot allocate), so deleting it frees space on every filesystem, tmpfs included.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

RESERVE_FILE = ".audit.reserve"
DEFAULT_RESERVE_BYTES = 1024 * 1024  # 1 MiB: ~1,000 records
REARM_INTERVAL_S = 5.0
# The errors that mean "no space": a full filesystem or a user's quota.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
_CHUNK = 64 * 1024


class SpaceReserve:
    """The reserve file of one audit directory; `size` bytes (0: no reserve).

    `ensure` creates (or completes) it and returns True when it holds `size` bytes, False when the
    disk has no room for it (a partial file is removed: it would hold space without being counted);
    `release` deletes it and returns the bytes it held (0 if there was none). Neither raises for a
    full disk; other OS errors propagate (`AuditLog` wraps them as `AuditWriteError`).
    """

    def __init__(self, directory: Path, size: int) -> None:
        self.path = Path(directory) / RESERVE_FILE
        self.size = max(0, int(size))

    def present(self) -> bool:
        try:
            return self.path.stat().st_size >= self.size > 0
        except FileNotFoundError:
            return False

    def ensure(self, *, fsync: bool = True) -> bool:
        if self.size == 0:
            return False
        if self.present():
            return True
        try:
            self._allocate(fsync)
        except OSError as e:
            if e.errno not in NO_SPACE:
                raise
            self.path.unlink(missing_ok=True)
            return False
        return True

    def _allocate(self, fsync: bool) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, self.size)
            except OSError as e:
                if e.errno in NO_SPACE:
                    raise
                zeros = bytes(_CHUNK)  # no fallocate here (EOPNOTSUPP...): real blocks, written
                done = os.fstat(fd).st_size
                os.lseek(fd, done, os.SEEK_SET)
                while done < self.size:
                    done += os.write(fd, zeros[: min(_CHUNK, self.size - done)])
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def release(self) -> int:
        try:
            held = self.path.stat().st_size
            self.path.unlink()
        except FileNotFoundError:
            return 0
        return held
