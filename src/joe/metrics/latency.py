"""`AuditLatency`: how long this process's audit writes take (append + fsync + anchor), as a histogram.

Audit writes sit on the order path (a record is fsynced before the action it describes goes on), so
their latency is the floor of Joe's order latency; ~12-21 ms per fsynced write on this hardware
(README "The audit log")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import Histogram
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class AuditLatency(Collector):
    """Wrap an audit sink's ``record`` (`instrument`) and expose ``joe_audit_write_seconds``."""

    def __init__(self) -> None:
        self.histogram = Histogram(
            "joe_audit_write_seconds",
            "Audit record write latency in this process",
            buckets=BUCKETS,
            registry=None,
        )

    def instrument(self, audit: Any) -> Any:
        """Time every ``audit.record(...)`` from now on; returns `audit`."""
        original = audit.record

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.histogram.observe(time.perf_counter() - t0)

        audit.record = timed
        return audit

    def collect(self) -> Iterator[Metric]:
        yield from self.histogram.collect()
