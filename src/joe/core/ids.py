"""Identifiers. `client_order_id` is deterministic so a retry or restart never makes a second order.

Both derived ids are *injective* in their parts: `client_order_id` hashes a length-prefixed
encoding (so `("a\\x1fb", "c")` and `("a", "b\\x1fc")` are different inputs to the hash), and
`signal_id` percent-escapes `%` and `:` in each part before joining with `:` and keeps case
(so `("trend:x", "y")`, `("trend", "x:y")` and `("TREND", "x:y")` all differ).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

_PREFIX = "joe"
_DIGEST_HEX = 24  # 96 bits; fits IBKR orderRef and Capital.com dealReference (<= 30 chars)


def _encode(*parts: str) -> bytes:
    """Length-prefixed UTF-8 encoding: `len:part` for each part, so no two part lists share an encoding."""
    out = bytearray()
    for p in parts:
        b = p.encode("utf-8", "surrogatepass")
        out += f"{len(b)}:".encode() + b
    return bytes(out)


def client_order_id(signal_id: str, leg: str, attempt: int = 0) -> str:
    """Derive the client order id from a signal id, an order leg ("entry", "stop", "target", "exit")
    and an attempt number (0 for the first; a retried exit after a rejection uses 1, 2, ...).

    Deterministic: the same (signal_id, leg, attempt) always gives the same id. Injective up to
    SHA-256 collisions: the parts are length-prefixed before hashing. Shape: `joe-` + 24 hex digits
    (28 chars). Raises `ValueError` for an empty signal id or leg or a negative attempt.
    """
    if not signal_id:
        raise ValueError("signal_id must not be empty")
    if not leg:
        raise ValueError("leg must not be empty")
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    parts = (signal_id, leg) if attempt == 0 else (signal_id, leg, str(attempt))
    digest = hashlib.sha256(_encode(*parts)).hexdigest()[:_DIGEST_HEX]
    return f"{_PREFIX}-{digest}"


def is_client_order_id(value: str) -> bool:
    """Whether `value` has the shape of an id `client_order_id` makes (`joe-` + 24 lowercase hex):
    an execution without one (an owner's trade on the platform) cannot be one of Joe's orders."""
    head, _, digest = value.partition("-")
    return head == _PREFIX and len(digest) == _DIGEST_HEX and all(c in "0123456789abcdef" for c in digest)


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A")


def signal_id(strategy: str, symbol: str, as_of: str, direction: str) -> str:
    """Deterministic signal id: one strategy's call on one symbol for one bar date and direction.

    Readable (`strategy:symbol:as_of:direction`) and injective: each part keeps its case and has
    `%` and `:` percent-escaped, so different parts never give the same id.
    """
    for name, value in (
        ("strategy", strategy),
        ("symbol", symbol),
        ("as_of", as_of),
        ("direction", direction),
    ):
        if not value:
            raise ValueError(f"signal_id: {name} must not be empty")
    return ":".join(_escape(p) for p in (strategy, symbol, as_of, direction))


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique id for one pipeline run: UTC timestamp plus random suffix."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
