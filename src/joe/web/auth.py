"""The dashboard's token: generated on first start, kept in ``<data dir>/web-token`` (0600), never logged.

Every request but ``/health`` and the login page carries it, one of three ways: ``Authorization: Bearer``
(scripts, Prometheus), the ``X-Joe-Token`` header, or the ``joe_token`` cookie the login form sets
(HttpOnly, SameSite=Strict). Mutations are CSRF-safe: a request authenticated by the cookie (the one
thing a browser attaches by itself) must also carry the CSRF value — the ``csrf`` form field of the
page's forms or the ``X-Joe-CSRF`` header; a header token cannot be sent cross-site without CORS, which
the app never grants. A wrong token is audited (``web.auth_failed``: path, client, how it came; never
the value).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from joe.audit.redaction import register_secret
from joe.audit.throttle import AuditThrottle
from joe.core.events import AuditSink

TOKEN_FILE = "web-token"
METRICS_TOKEN_FILE = "metrics-token"
METRICS_MODE = 0o640
METRICS_PATH = "/metrics"
COOKIE = "joe_token"
CSRF_HEADER = "X-Joe-CSRF"
TOKEN_HEADER = "X-Joe-Token"
AUDIT_BURST = 20  # wrong-token records per client per window; the rest are counted in the next one
AUDIT_WINDOW_S = 60.0


def token_path(data_dir: Path) -> Path:
    return Path(data_dir) / TOKEN_FILE


class TokenFileError(ValueError):
    """The web-token file cannot be used; the message names the file and what to do."""


def metrics_token_path(data_dir: Path) -> Path:
    return Path(data_dir) / METRICS_TOKEN_FILE


def load_or_create_metrics_token(data_dir: Path) -> tuple[str, bool]:
    """The scrape-only token (``<data dir>/metrics-token``, 0640: a Prometheus in the file's group may
    read it): it opens ``GET /metrics`` and nothing else — never a page, the API or a control. Created
    like the web token (`load_or_create_token`); registered for redaction."""
    return _load_or_create(metrics_token_path(data_dir), METRICS_MODE)


def load_or_create_token(data_dir: Path) -> tuple[str, bool]:
    """(token, created). Creates the file with 0600 (exclusive create: two first starts cannot both
    write); an existing file readable by others is narrowed to 0600. The token is registered for
    redaction so no log line or audit record can show it.

    A first start that could not finish writing (a full disk) leaves no file behind; an *empty* file
    (such a start from an older version, killed mid-write) is replaced by a new token. A file with a
    short, non-empty token raises `TokenFileError` (someone wrote it: Joe does not overwrite it)."""
    return _load_or_create(token_path(data_dir), 0o600)


def _load_or_create(path: Path, mode: int) -> tuple[str, bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    created = False
    try:
        if path.exists() and not path.read_text().strip():
            path.unlink()  # an empty leftover of an interrupted first start: start over
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        pass
    else:
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
        except OSError:
            path.unlink(missing_ok=True)  # never leave an empty token file behind
            raise
        created = True
    if path.stat().st_mode & 0o777 & ~mode:
        os.chmod(path, mode)
    token = path.read_text().strip()
    if len(token) < 16:
        raise TokenFileError(
            f"{path} holds no usable token (under 16 characters): delete it to generate a new one"
        )
    register_secret(token)
    return token, created


def csrf_value(token: str) -> str:
    """The CSRF value of a token: derived, so it proves the page was served to a token holder."""
    return hmac.new(token.encode(), b"joe-web-csrf", hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True)
class Caller:
    """Who made an authenticated request, and how (``bearer``, ``header``, ``cookie``, or ``metrics``:
    the scrape-only token, good for ``GET /metrics`` alone)."""

    via: str
    client: str

    @property
    def by(self) -> str:
        return f"web:{self.client}"


class TokenAuth:
    """The web token opens everything; the optional scrape-only `metrics_token` only ``GET /metrics``
    (`caller` then answers via ``metrics``; the app refuses it anywhere else)."""

    def __init__(
        self,
        token: str,
        audit: AuditSink,
        throttle: AuditThrottle | None = None,
        metrics_token: str | None = None,
    ) -> None:
        self._token = token
        self._metrics_token = metrics_token
        self.audit = audit
        self.csrf = csrf_value(token)
        self.throttle = throttle or AuditThrottle(AUDIT_BURST, AUDIT_WINDOW_S)

    def matches(self, supplied: str | None) -> bool:
        return supplied is not None and hmac.compare_digest(supplied.encode(), self._token.encode())

    def caller(self, request: Request) -> Caller | None:
        """The caller if the request carries the right token; None (the wrong one audited) otherwise."""
        client = request.client.host if request.client else "?"
        auth = request.headers.get("authorization", "")
        supplied: list[tuple[str, str]] = []
        if auth.lower().startswith("bearer "):
            supplied.append(("bearer", auth[7:].strip()))
        if TOKEN_HEADER in request.headers:
            supplied.append(("header", request.headers[TOKEN_HEADER]))
        if COOKIE in request.cookies:
            supplied.append(("cookie", request.cookies[COOKIE]))
        for via, value in supplied:
            if self.matches(value):
                return Caller(via, client)
        metrics = self._metrics_token
        for _via, value in supplied:
            if metrics and value is not None and hmac.compare_digest(value.encode(), metrics.encode()):
                return Caller("metrics", client)
        if supplied:
            self.wrong(request, via=supplied[0][0])
        return None

    def wrong(self, request: Request, *, via: str) -> None:
        """Audit a wrong token (`AuditThrottle`: a flood from one client is summarised, every attempt
        still counted; the audit log and, with ``joe daemon --web``, the daemon's loop stay free)."""
        client = request.client.host if request.client else "?"
        suppressed = self.throttle.admit(client)
        if suppressed is None:
            return
        payload: dict[str, str | int] = {
            "path": request.url.path[:200],
            "method": request.method,
            "client": client,
            "via": via,
        }
        if suppressed:
            payload["suppressed"] = suppressed
        self.audit.record("web.auth_failed", payload)

    def csrf_ok(self, caller: Caller, request: Request, form_value: str | None = None) -> bool:
        """A cookie-authenticated mutation must prove it came from Joe's own page."""
        if caller.via != "cookie":
            return True
        value = form_value if form_value is not None else request.headers.get(CSRF_HEADER)
        return value is not None and hmac.compare_digest(value.encode(), self.csrf.encode())
