"""``/health``: liveness for a supervisor or a container probe — the store answers and the daemon's
heartbeat (when a daemon runs on this store) is fresh. It says nothing about positions or money, so it
is the one endpoint served without the dashboard token (probes cannot carry one)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from joe.core.clock import utcnow

if TYPE_CHECKING:
    from joe.store import Store


def health(store: Store, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 200 ``ok``; 503 ``down`` when the store cannot be read or the daemon's
    heartbeat is stale (it died or hangs; 30 s, as `joe status`)."""
    from joe.runtime.daemon import heartbeat_health

    try:
        h = heartbeat_health(store, now=now or utcnow())
    except Exception as exc:
        return 503, {"status": "down", "store": f"unreadable ({type(exc).__name__})"}
    daemon = (
        "running"
        if h["running"]
        else "stale"
        if h["stale"]
        else "none"
        if h["heartbeat"] is None
        else "stopped"
    )
    if h["stale"]:
        return 503, {
            "status": "down",
            "store": "ok",
            "daemon": daemon,
            "heartbeat_age_s": round(h["age_s"], 1),
        }
    return 200, {"status": "ok", "store": "ok", "daemon": daemon}
