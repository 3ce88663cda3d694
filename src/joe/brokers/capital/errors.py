"""Typed errors for the Capital.com API, mapped from HTTP status and the body's `errorCode`.

Capital.com error bodies are `{"errorCode": "<code>"}`; some codes carry a value after the first
colon (`error.invalid.stoploss.minvalue: 17.146`). `map_error` splits there and picks the class.
5xx answers, gateway HTML pages and any body that is not the documented JSON are *transient*.
Exception messages never contain request headers or bodies, so no secret can leak through them.
"""

from __future__ import annotations

import json
from typing import Any

from joe.brokers.base import BrokerError, BrokerUnavailable


class CapitalError(BrokerError):
    """Any error answer from Capital.com (or the simulator) with its HTTP status and split code."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "", value: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.value = value
        # Set by the transport: the request never left (connect failure) / a re-login already happened.
        self.not_sent = False
        self.relogged = False


class CapitalAuthError(CapitalError):
    """Login refused (bad identifier/password, unknown or missing API key). Never retried."""


class SessionExpired(CapitalError):
    """The CST / X-SECURITY-TOKEN pair is missing, invalid or expired; a re-login fixes it."""


class RateLimited(CapitalError):
    """HTTP 429 `error.too-many.requests`: the server refused the request *without* processing it."""


class NotFound(CapitalError):
    """404: unknown epic, dealId, dealReference, watchlist..."""


class InvalidRequest(CapitalError):
    """400-class validation error (size, stop/limit bounds, dates, resolution...)."""


class MarketClosed(InvalidRequest):
    """The market is closed (free-text `Rejected. <EPIC> is currently closed...` codes)."""


class CapitalTransient(CapitalError, BrokerUnavailable):
    """5xx, a gateway HTML page, a timeout or a connection failure: the service may recover."""


class ProtocolError(CapitalTransient):
    """The server answered 2xx with something that is not the documented shape (garbage, wrong types)."""


class AmbiguousWrite(CapitalTransient):
    """A write (order open/amend/close) may or may not have been processed: timeout, 5xx or garbage."""


_NEVER_RELOGIN = frozenset(
    {"error.invalid.details", "error.null.api.key", "error.invalid.accountid", "error.invalid.api.key"}
)


def split_code(error_code: str) -> tuple[str, str]:
    """Split `code: value` at the first colon; returns (code, value) stripped."""
    code, sep, value = error_code.partition(":")
    return code.strip(), value.strip() if sep else ""


def is_session_error(status: int | None, code: str) -> bool:
    """Spec §3.8 client rule: re-login on 401 or a session-looking code, never on login errors."""
    low = code.lower()
    if low in _NEVER_RELOGIN:
        return False
    if (
        low.startswith("error.security.")
        or "session" in low
        or "client.token" in low
        or "client-token" in low
    ):
        return True
    return status == 401 and not low.startswith("error.invalid.api")


def map_error(status: int, body: bytes | str | None, *, path: str = "") -> CapitalError:
    """Turn a non-2xx answer into the matching typed exception (never raises itself)."""
    where = f" on {path}" if path else ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    error_code: str | None = None
    if text.strip():
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("errorCode"), str):
            error_code = parsed["errorCode"]
    if error_code is None:
        # Non-JSON (HTML 504 page) or an undocumented body: transient if 5xx or unknown shape.
        if status == 429:
            return RateLimited(f"HTTP 429{where}", status=status, code="error.too-many.requests")
        if status in (401, 403):
            return SessionExpired(f"HTTP {status} without errorCode{where}", status=status)
        if status == 404:
            return NotFound(f"HTTP 404 without errorCode{where}", status=status)
        return CapitalTransient(f"HTTP {status} with a non-JSON or undocumented body{where}", status=status)
    code, value = split_code(error_code)
    msg = f"HTTP {status} {code}{where}"
    if status >= 500:
        return CapitalTransient(msg, status=status, code=code, value=value)
    if status == 429 or code == "error.too-many.requests":
        return RateLimited(msg, status=status, code=code, value=value)
    if code.lower() in _NEVER_RELOGIN and code.lower() != "error.invalid.accountid":
        return CapitalAuthError(msg, status=status, code=code, value=value)
    if is_session_error(status, code):
        return SessionExpired(msg, status=status, code=code, value=value)
    if "currently closed" in code.lower() or code.lower() == "market_closed":
        return MarketClosed(msg, status=status, code=code, value=value)
    if status == 404:
        return NotFound(msg, status=status, code=code, value=value)
    if 400 <= status < 500:
        return InvalidRequest(msg, status=status, code=code, value=value)
    return CapitalTransient(msg, status=status, code=code, value=value)
