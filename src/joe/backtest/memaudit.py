"""`MemoryAudit`: the backtest's audit sink — every record the day loop makes, kept in memory.

A backtest's scratch book is thrown away when it ends (`joe.backtest.scratch`), and its audit log with
it: nobody can read it afterwards, and its purpose — proving after a crash what was sent to a broker —
does not exist for a replay that sends nothing. The hash-chained `AuditLog` costs ~0.5 ms a record (a
directory listing, a lock, redaction, hashing and two writes), a dozen records per simulated day:
about a fifth of the day loop. This sink keeps the same calls (`record(event, payload, **ids)`, the
`joe.core.events.AuditSink` protocol every layer writes through), so the stages, the RiskGate and the
paper book run unchanged, and keeps the events for the backtest to count (`counts`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any


class MemoryAudit:
    """An `AuditSink` keeping (event, payload, ids) in order, in memory (see the module docstring)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def record(self, event_type: str, payload: Mapping[str, Any] | None = None, **ids: Any) -> None:
        self.records.append((str(event_type), dict(payload or {}), ids))

    def counts(self) -> Counter[str]:
        """How many records of each event type."""
        return Counter(e for e, _, _ in self.records)

    def close(self) -> None:
        return None


__all__ = ["MemoryAudit"]
