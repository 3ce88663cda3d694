"""Column types that keep Joe's values exact: Decimal as text, timestamps as aware UTC, lenient JSON.

SQLite's NUMERIC affinity goes through a float (0.1 + 0.2 comes back as 0.30000000000000004), so money,
prices and sizes are stored as decimal strings on every backend: exact, and identical on SQLite and
PostgreSQL. Nothing in Joe compares these columns in SQL, so text ordering never matters.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import DateTime, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from joe.core.clock import ensure_utc


class DecimalText(TypeDecorator[Decimal]):
    """A `Decimal` stored as its exact string form (`str(Decimal)`), read back as the same `Decimal`."""

    # Unbounded text: a Decimal at high context precision must never be cut (VARCHAR(n) would be).
    impl = Text()
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, float | bool):
            # A float has already lost exactness; refuse rather than store a rounding artefact.
            raise TypeError(f"DecimalText needs Decimal, int or str, not {type(value).__name__}: {value!r}")
        d = value if isinstance(value, Decimal) else Decimal(value)
        if not d.is_finite():
            raise ValueError(f"DecimalText cannot store a non-finite value: {d}")
        return str(d)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware UTC.

    Naive inputs are taken to be UTC (as `joe.core.clock.ensure_utc` does); a plain `date` is stored as
    its midnight UTC. SQLite keeps no zone, so the UTC wall time is stored naive there; PostgreSQL gets a
    `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, time(), UTC)
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime needs a datetime, not {type(value).__name__}: {value!r}")
        utc = ensure_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # defensive: a hand-edited SQLite row
            value = datetime.fromisoformat(value)
        return ensure_utc(value)


def json_default(obj: Any) -> Any:
    """`json.dumps` fallback for the engine: Decimal → string (exact), datetimes → ISO, enums → value."""
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime):
        return ensure_utc(obj).isoformat()
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def json_dumps(obj: Any) -> str:
    """The engine's JSON serializer (summaries, payloads): lenient for Joe's value types."""
    return json.dumps(obj, default=json_default, sort_keys=True)
