"""`AlertingAudit`: every audited execution fact that a trader must hear about also becomes an alert.

The `OrderManager` audits each fill, reject and UNKNOWN outcome (``order.fill``, ``order.rejected``,
``order.state`` to ``rejected``/``unknown``, ``order.unknown``). Handing it this sink instead of the
bare `AuditLog` turns those very records into execution alerts (`ExecutionAlerts.order_event`), so an
alert exists exactly when the audit record does, with no second code path in the execution layer to
forget. The record is written first; an alert is queued only after the write succeeded, and a
failing alert never fails the write. Dedup keys: the fill id for fills, the order id for rejects
and UNKNOWN outcomes (one alert per order however many records say so).
"""

from __future__ import annotations

from typing import Any

from joe.core.events import AuditSink
from joe.safety.alerts import ExecutionAlerts


class AlertingAudit:
    """An `AuditSink` that writes through to `inner` and queues alerts on `alerts`."""

    def __init__(self, inner: AuditSink, alerts: ExecutionAlerts) -> None:
        self.inner = inner
        self.alerts = alerts

    def record(self, event_type: str, payload: dict[str, Any] | None = None, **ids: str | None) -> Any:
        out = self.inner.record(event_type, payload, **ids)
        try:
            self._alert(event_type, payload or {}, ids)
        except Exception:  # an alert never breaks the audit write it follows
            pass
        return out

    def _alert(self, event: str, p: dict[str, Any], ids: dict[str, str | None]) -> None:
        coid = str(ids.get("client_order_id") or "?")
        broker = p.get("broker", "")
        if event == "order.fill":
            what = f"{p.get('side', '')} {p.get('quantity', '')} {p.get('symbol', '')} @ {p.get('price', '')}"
            self.alerts.order_event(
                "fill",
                str(p.get("symbol") or coid),
                f"{what} ({broker} {coid})",
                str(p.get("fill_id") or coid),
            )
        elif event == "order.rejected" or (event == "order.state" and p.get("to") == "rejected"):
            self.alerts.order_event("reject", coid, f"{broker}: {p.get('reason', '')}", coid)
        elif event == "order.unknown" or (event == "order.state" and p.get("to") == "unknown"):
            self.alerts.order_event(
                "unknown", coid, f"{broker}: outcome unknown, asking the broker ({p.get('reason', '')})", coid
            )
