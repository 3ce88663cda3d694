"""Console output through the same redaction as logs and audit records.

`install()` wraps ``sys.stdout`` and ``sys.stderr`` in `RedactingStream` (the `joe` command does it
first thing), so every console path — rich consoles, ``typer.echo``, ``print``, an uncaught
exception's traceback — passes `joe.audit.redaction.redact_text`. Text is redacted a whole line at
a time, so a secret written in two pieces is still caught.

The console is never the record of truth (the audit log, the store and the report are), so a
console that goes away — a closed pipe (``joe run --once | head``, a killed daemon reading its
child), a hung-up terminal (EIO), a full disk under a redirect — must not stop a run half-way:
the first failed write sends the stream's descriptor to ``/dev/null`` and the run goes on.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import Any, TextIO

from joe.audit.redaction import redact_text


class RedactingStream:
    """A text stream that masks secrets line by line before passing text on to `inner`."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self._pending = ""
        self.lost: OSError | None = None
        """The error that took the console away (then output is dropped), or None."""

    def write(self, text: str) -> int:
        data = self._pending + text
        head, sep, rest = data.rpartition("\n")
        self._pending = rest
        if sep:
            self._put(redact_text(head + sep))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._put(redact_text(self._pending))
            self._pending = ""
        if self.lost is None:
            try:
                self.inner.flush()
            except OSError as exc:
                self._lose(exc)

    def _put(self, text: str) -> None:
        if self.lost is not None:
            return
        try:
            self.inner.write(text)
        except OSError as exc:
            self._lose(exc)

    def _lose(self, exc: OSError) -> None:
        """The console is gone: drop output from now on, and point the descriptor at /dev/null so the
        inner stream's buffered bytes (flushed again at interpreter exit) cannot raise either."""
        self.lost = exc
        with contextlib.suppress(OSError, ValueError, AttributeError):
            fd = self.inner.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)

    def close_quietly(self) -> None:
        """Flush what is pending at exit (the inner stream may already be closed)."""
        try:
            self.flush()
        except (ValueError, OSError):
            pass

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.inner, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _flush_at_exit() -> None:
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, RedactingStream):
            stream.close_quietly()


_registered = False


def install() -> None:
    """Wrap ``sys.stdout`` / ``sys.stderr`` (idempotent)."""
    global _registered
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)  # type: ignore[assignment]
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)  # type: ignore[assignment]
    if not _registered:
        atexit.register(_flush_at_exit)
        _registered = True
