"""Execution alerts: what the safety layer tells the trader, with a severity and a dedup key.

Guards run in synchronous code paths, so alerts are queued here and delivered by `flush` through
the existing `AlertManager` (which filters per channel by level and drops duplicates within its
window; the dedup keys below make "the same breaker tripped again" one alert, not fifty).
Delivery never raises and never blocks a guard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from joe.core.logging import get_logger
from joe.reporting.alerts.formatting import Alert, AlertLevel

log = get_logger("joe.safety.alerts")


class AlertSender(Protocol):
    """Anything with the `AlertManager.send` shape."""

    async def send(self, alert: Alert) -> Any: ...


@dataclass
class ExecutionAlerts:
    """A queue of execution alerts (see the module docstring)."""

    pending: list[Alert] = field(default_factory=list)

    def _add(self, level: AlertLevel, title: str, body: str, key: str) -> None:
        # Deduplicated here as well as by the AlertManager's window: the same fact reported twice
        # before a flush (a reject seen as an exception and as a status) is one alert.
        if any(a.key == key for a in self.pending):
            return
        self.pending.append(Alert(level, title, body, key=key))
        log.info("safety.alert", level=level.name.lower(), title=title)

    # -- the events ----------------------------------------------------------------------------
    def kill(self, level: str, by: str, reason: str, state: str, changed: bool) -> None:
        self._add(
            AlertLevel.CRITICAL,
            f"Kill switch: {level.upper()}",
            f"by {by}: {reason}\ntrading state: {state}" + ("" if changed else " (unchanged)"),
            f"kill|{level}|{by}|{reason}",
        )

    def resumed(self, by: str, reason: str, was: str) -> None:
        self._add(
            AlertLevel.WARNING, "Trading resumed", f"by {by} (was {was}): {reason}", f"resume|{by}|{reason}"
        )

    def state_changed(self, to: str, by: str, reason: str) -> None:
        level = AlertLevel.CRITICAL if to == "halted" else AlertLevel.WARNING
        self._add(level, f"Trading state: {to.upper()}", f"by {by}: {reason}", f"state|{to}|{by}")

    def flattened(self, venue: str, flat: bool, report: dict[str, Any]) -> None:
        if flat:
            self._add(
                AlertLevel.WARNING, f"Flattened at {venue}", "no position, no working order", f"flat|{venue}"
            )
        else:
            left = report.get("left_positions", []), report.get("left_orders", [])
            self._add(
                AlertLevel.CRITICAL,
                f"Flatten INCOMPLETE at {venue}",
                f"left positions: {left[0]}\nleft orders: {left[1]}\nerrors: {report.get('errors', [])[:5]}",
                f"flat-incomplete|{venue}",
            )

    def audit_broken(self, summary: str) -> None:
        self._add(AlertLevel.CRITICAL, "Audit chain BROKEN", summary, "audit-broken")

    def breaker_tripped(self, broker: str, reason: str) -> None:
        self._add(AlertLevel.CRITICAL, f"Circuit breaker tripped: {broker}", reason, f"breaker|{broker}")

    def margin(self, level: str, broker: str, detail: str) -> None:
        sev = AlertLevel.CRITICAL if level in ("reduce", "halt") else AlertLevel.WARNING
        self._add(sev, f"Margin {level}: {broker}", detail, f"margin|{broker}|{level}")

    def lost_protection(self, symbol: str, outcome: str, detail: str) -> None:
        self._add(
            AlertLevel.CRITICAL, f"Lost stop on {symbol}: {outcome}", detail, f"protect|{symbol}|{outcome}"
        )

    def order_event(self, kind: str, symbol: str, detail: str, key: str) -> None:
        """Fills (TRADE); rejects, broker corrections, invalid fills and the owner's trades on Joe's
        positions (WARNING); UNKNOWN outcomes and anything else (CRITICAL). Title: "KIND: id"."""
        levels = {
            "fill": AlertLevel.TRADE, "reject": AlertLevel.WARNING, "owner": AlertLevel.WARNING,
            "correction": AlertLevel.WARNING, "invalid_fill": AlertLevel.WARNING,
        }  # fmt: skip
        level = levels.get(kind, AlertLevel.CRITICAL)
        self._add(level, f"{kind.upper()}: {symbol}", detail, f"order|{kind}|{key}")

    def denied(self, rule: str, symbol: str, detail: str) -> None:
        self._add(AlertLevel.INFO, f"Risk gate denied {symbol}: {rule}", detail, f"deny|{rule}|{symbol}")

    # -- delivery ------------------------------------------------------------------------------
    async def flush(self, sender: AlertSender | None) -> int:
        """Send everything queued (deduplicated by the sender); returns how many were handed over."""
        alerts, self.pending = self.pending, []
        if sender is None:
            return 0
        sent = 0
        for a in alerts:
            try:
                await sender.send(a)
                sent += 1
            except Exception as e:  # alerts never break a guard
                log.warning("safety.alert_failed", error=type(e).__name__)
        return sent
