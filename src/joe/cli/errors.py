"""One clear line for the errors a command can meet before it does anything (store, data folder).

Each message names what is wrong, where (the variable or the file) and what to do; it never
shows a secret (database URLs are shown with their password hidden).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from joe.audit.log import AuditWriteError
from joe.store.db import ENV_URL
from joe.store.errors import SchemaError, StoreError


def _db_hint() -> str:
    if os.environ.get(ENV_URL):
        return f"{ENV_URL} is set: fix it or unset it to use sqlite under JOE_DATA_DIR"
    return f"the default database is <JOE_DATA_DIR>/joe.db ({ENV_URL} overrides it)"


_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "connection failed",
    "timeout expired",
    "could not translate host name",
    "name or service not known",
    "no route to host",
)


def _unreachable(text: str) -> bool:
    low = text.lower()
    return any(words in low for words in _UNREACHABLE)


_DISK_FULL = ("database or disk is full", "no space left on device", "disk i/o error", "disk quota exceeded")


def disk_full(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) is a full or failing disk: ENOSPC / EDQUOT / EIO, SQLite's
    ``SQLITE_FULL`` / ``SQLITE_IOERR`` — not a damaged database (review r16, defect 7)."""
    import errno

    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if getattr(seen, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            return True
        if any(words in str(seen).lower() for words in _DISK_FULL):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _disk_full_message(exc: BaseException) -> str:
    from joe.config.settings import load_settings

    try:
        where = str(load_settings().data_dir)
    except Exception:
        where = "the data folder (JOE_DATA_DIR, default ./data)"
    return (
        f"{type(exc).__name__}: {exc}. The disk holding {where} is full (or failing): the database is "
        f"most likely fine — do NOT move it aside. Free space there (`df -h {where}`), then run the command "
        f"again; `touch {where}/KILL` halts every Joe on it without needing free space"
    )


def startup_error(exc: BaseException) -> str:
    """The one-line explanation of a start-up failure (what, where, what to do)."""
    text = str(exc)
    if disk_full(exc):
        return _disk_full_message(exc)
    if isinstance(exc, StoreError):
        if "invalid database URL" in text:
            where = ENV_URL if os.environ.get(ENV_URL) else "the database URL"
            return (
                f"{where} is not a database URL SQLAlchemy can parse: use e.g. sqlite:///data/joe.db "
                f"or postgresql+psycopg://user@host/joe, or unset {ENV_URL}"
            )
        if "driver not installed" in text:
            return (
                f"{text}. Install the driver into Joe's virtualenv (e.g. .venv/bin/pip install psycopg), "
                f"or {_db_hint()}"
            )
        if isinstance(exc, SchemaError) or "newer" in text or "not a Joe database" in text:
            return f"{text}. Use the Joe version that wrote it, or {_db_hint()}"
        if _unreachable(text):
            where = ENV_URL if os.environ.get(ENV_URL) else "the database URL"
            return (
                f"{text}. The database server cannot be reached: start it, or check the host and port "
                f"in {where}; {_db_hint()}"
            )
        if "cannot create directory" in text or "readonly" in text.lower() or "permission" in text.lower():
            return f"{text}. Joe needs a writable data folder (JOE_DATA_DIR, default ./data)"
        return (
            f"{text}. The database cannot be used (damaged or not a database?): move it aside (keep a copy) "
            f"or point {ENV_URL} at another one; {_db_hint()}"
        )
    if isinstance(
        exc, AuditWriteError | PermissionError | IsADirectoryError | NotADirectoryError | FileExistsError
    ):
        return (
            f"{type(exc).__name__}: {exc}. Joe needs a writable data folder (JOE_DATA_DIR, default ./data) "
            "for its audit log and store"
        )
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc}. Check the data folder (JOE_DATA_DIR, default ./data)"
    return f"{type(exc).__name__}: {exc}"


# A clock started outside these years would overflow as it runs on (datetime ends at year 9999) or date
# bars before the epoch: a usage error, not a traceback at the first tick.
CLOCK_YEARS = (1970, 2199)


def parse_clock_start(value: str | None, console: Any, flag: str = "--clock-start") -> datetime | None:
    """`--clock-start`'s ISO 8601 instant as a UTC datetime (None when not given). A value that is not
    an instant, or one outside `CLOCK_YEARS`, is a usage error: said on `console`, naming `flag` and an
    example, then `typer.Exit(2)`."""
    if value is None or not value.strip():
        return None
    import typer

    from joe.cli.exit_codes import ExitCode
    from joe.core.clock import ensure_utc

    try:
        when = ensure_utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):  # an offset such as +25:00, or one that leaves datetime's range
        console.print(f"{flag} must be an ISO 8601 instant such as 2026-12-01T15:00:00Z, "
                      f"not {value[:40]!r}")  # fmt: skip
        raise typer.Exit(ExitCode.USAGE) from None
    if not CLOCK_YEARS[0] <= when.year <= CLOCK_YEARS[1]:
        console.print(f"{flag} must be an instant in the years {CLOCK_YEARS[0]}-{CLOCK_YEARS[1]}, "
                      f"not {value[:40]!r}")  # fmt: skip
        raise typer.Exit(ExitCode.USAGE)
    return when
