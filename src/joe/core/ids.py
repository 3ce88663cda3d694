"""Identifiers. `client_order_id` is deterministic so a retry or restart never makes a second order."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

_PREFIX = "joe"


def client_order_id(signal_id: str, leg: str) -> str:
    """Derive the client order id from a signal id and an order leg ("entry", "stop", "target", ...).

    The same (signal_id, leg) always gives the same id, and different inputs give different ids
    (a 20-hex-digit SHA-256 prefix; IBKR's orderRef and Capital.com's dealReference both accept it).
    """
    if not signal_id:
        raise ValueError("signal_id must not be empty")
    if not leg:
        raise ValueError("leg must not be empty")
    digest = hashlib.sha256(f"{signal_id}\x1f{leg}".encode()).hexdigest()[:20]
    return f"{_PREFIX}-{digest}"


def signal_id(strategy: str, symbol: str, as_of: str, direction: str) -> str:
    """Deterministic signal id: one strategy's call on one symbol for one bar date and direction."""
    return f"{strategy}:{symbol}:{as_of}:{direction}".lower()


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique id for one pipeline run: UTC timestamp plus random suffix."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
