"""Time helpers: Joe keeps every timestamp timezone-aware in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def ensure_utc(ts: datetime) -> datetime:
    """Return `ts` as an aware UTC datetime (naive values are taken to be UTC)."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)
