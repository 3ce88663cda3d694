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


def error_code(exc: CapitalError) -> str:
    """The broker's error code of `exc` (``error.invalid.size``), else its class name (a transport
    failure has no code): what notices, audit records and messages name."""
    return exc.code or type(exc).__name__


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


KEY_HINT = (
    "check CAPITAL_API_KEY (the key shown in Capital.com Settings > API integrations): enabled, not "
    "expired, and made for this environment (a demo key is refused live and a live key on demo)"
)
LOGIN_HINT = (
    "check CAPITAL_IDENTIFIER (the account's login e-mail) and CAPITAL_PASSWORD (the API key's own "
    "custom password, not the account password)"
)


def is_api_key_code(code: str) -> bool:
    """A code about the API key itself (`error.invalid.api.key`, `error.null.api.key`, spellings
    like `api-key` / `apikey` in other variants): never a session problem, never fixed by a re-login."""
    low = code.lower()
    return any(k in low for k in ("api.key", "api-key", "apikey", "api_key"))


def split_code(error_code: str) -> tuple[str, str]:
    """Split `code: value` at the first colon; returns (code, value) stripped."""
    code, sep, value = error_code.partition(":")
    return code.strip(), value.strip() if sep else ""


def is_session_error(status: int | None, code: str) -> bool:
    """Spec §3.8 client rule: re-login on 401 or a session-looking code, never on login errors."""
    low = code.lower()
    if low in _NEVER_RELOGIN or is_api_key_code(low):
        return False
    if (
        low.startswith("error.security.")
        or "session" in low
        or "client.token" in low
        or "client-token" in low
    ):
        return True
    return status == 401 and not low.startswith("error.invalid.api")


def _auth_error(status: int, code: str, value: str, where: str, *, login: bool) -> CapitalAuthError | None:
    """The clear login error for an answer about the credentials, else None. Names what to check,
    never the values (no key, identifier or password in the message)."""
    shown = code or "no errorCode"
    if is_api_key_code(code):
        return CapitalAuthError(
            f"API key rejected ({shown}, HTTP {status}){where}: {KEY_HINT}",
            status=status,
            code=code,
            value=value,
        )
    if code.lower() == "error.invalid.details":
        return CapitalAuthError(
            f"login refused ({shown}, HTTP {status}){where}: {LOGIN_HINT}",
            status=status,
            code=code,
            value=value,
        )
    if login and status in (401, 403):
        # A refused login is about the credentials whatever the body says; never "session expired".
        return CapitalAuthError(
            f"login refused ({shown}, HTTP {status}){where}: {KEY_HINT}; {LOGIN_HINT}",
            status=status,
            code=code,
            value=value,
        )
    return None


def map_error(status: int, body: bytes | str | None, *, path: str = "", login: bool = False) -> CapitalError:
    """Turn a non-2xx answer into the matching typed exception (never raises itself).

    `login`: the request was a login step (`POST /session`, `GET /session/encryptionKey`), so a
    401/403 is a credentials problem (`CapitalAuthError` naming what to check), not an expired session.
    """
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
        if (auth := _auth_error(status, "", "", where, login=login)) is not None:
            return auth
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
    if (auth := _auth_error(status, code, value, where, login=login)) is not None:
        return auth
    if is_session_error(status, code):
        return SessionExpired(msg, status=status, code=code, value=value)
    if "currently closed" in code.lower() or code.lower() == "market_closed":
        return MarketClosed(msg, status=status, code=code, value=value)
    if status == 404:
        return NotFound(msg, status=status, code=code, value=value)
    if 400 <= status < 500:
        return InvalidRequest(msg, status=status, code=code, value=value)
    return CapitalTransient(msg, status=status, code=code, value=value)
