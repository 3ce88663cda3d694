"""Console output through the same redaction as logs and audit records.

`install()` wraps ``sys.stdout`` and ``sys.stderr`` in `RedactingStream` (the `joe` command does it
first thing), so every console path — rich consoles, ``typer.echo``, ``print``, an uncaught
exception's traceback — passes `joe.audit.redaction.redact_text`. Text is redacted a whole line at
a time, so a secret written in two pieces is still caught.
"""

from __future__ import annotations

import atexit
import sys
from typing import Any, TextIO

from joe.audit.redaction import redact_text


class RedactingStream:
    """A text stream that masks secrets line by line before passing text on to `inner`."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self._pending = ""

    def write(self, text: str) -> int:
        data = self._pending + text
        head, sep, rest = data.rpartition("\n")
        self._pending = rest
        if sep:
            self.inner.write(redact_text(head + sep))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.inner.write(redact_text(self._pending))
            self._pending = ""
        self.inner.flush()

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
