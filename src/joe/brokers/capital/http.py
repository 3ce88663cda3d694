"""`CapitalClient`: the async REST transport — session lifecycle, rate limits, errors, audit.

Policy per request:
* every request waits for the `RateLimiter` first (orders also for the 0.1 s spacing);
* a 429 means the server refused without processing, so any request is backed off and re-sent
  (bounded); if the budget runs out the caller gets `RateLimited`;
* a session error (401 or a session-looking `errorCode`) triggers one re-login; a *read* is then
  retried, a write is not (the caller gets `SessionExpired` with `relogged=True` and decides);
* transient failures (5xx, gateway HTML, non-JSON, timeouts) are retried with backoff + jitter for
  reads; for writes they become `AmbiguousWrite` — never re-sent here (no blind order retries);
* every request and its outcome is audited with secrets redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from typing import Any

import httpx

from joe.audit.redaction import redact, redact_text
from joe.brokers.capital.errors import (
    AmbiguousWrite,
    CapitalError,
    CapitalTransient,
    ProtocolError,
    RateLimited,
    SessionExpired,
    map_error,
)
from joe.brokers.capital.ratelimit import Limits, RateLimiter
from joe.brokers.capital.session import Credentials, SessionState, encrypt_password
from joe.core.events import AuditSink

API_PREFIX = "/api/v1"
_ORDER_PATHS = ("/positions", "/workingorders")


class CapitalClient:
    """Async Capital.com REST client. Call `open()` first (logs in), `close()` at the end."""

    def __init__(
        self,
        api_url: str,
        credentials: Credentials,
        *,
        audit: AuditSink,
        demo: bool = True,
        limits: Limits | None = None,
        limiter: RateLimiter | None = None,
        timeout_s: float = 10.0,
        order_timeout_s: float | None = None,
        keepalive_s: float = 540.0,
        max_session_age_s: float = 50 * 60.0,
        read_retries: int = 3,
        rate_retries: int = 5,
        backoff_s: float = 0.2,
        account_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.credentials = credentials
        self.audit = audit
        self.demo = demo
        self.limiter = limiter or RateLimiter(limits, demo=demo)
        self.timeout_s = timeout_s
        self.order_timeout_s = order_timeout_s or timeout_s
        self.keepalive_s = keepalive_s
        self.max_session_age_s = max_session_age_s
        self.read_retries = read_retries
        self.rate_retries = rate_retries
        self.backoff_s = backoff_s
        self.wanted_account_id = account_id
        self.session = SessionState()
        self.stream_url: str | None = None  # set by open_capital (override or streamingHost)
        self.logins = 0
        self._http = httpx.AsyncClient(
            base_url=self.api_url + API_PREFIX, timeout=timeout_s, transport=transport
        )
        self._login_lock = asyncio.Lock()
        self._keepalive_task: asyncio.Task[None] | None = None
        self._rng = random.Random()

    # ---------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        """Log in, switch to the wanted account if one is configured, and start the keep-alive."""
        await self.login()
        if self.wanted_account_id and self.wanted_account_id != self.session.account_id:
            await self.switch_account(self.wanted_account_id)
        if self._keepalive_task is None and self.keepalive_s > 0:
            self._keepalive_task = asyncio.create_task(self._keepalive(), name="capital-keepalive")

    async def close(self) -> None:
        """Stop the keep-alive, log out (best effort) and close the HTTP pool."""
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive_task
            self._keepalive_task = None
        if self.session.active:
            with contextlib.suppress(CapitalError, httpx.HTTPError):
                await self.request("DELETE", "/session", retry_session=False)
        self.session.clear()
        await self._http.aclose()

    async def __aenter__(self) -> CapitalClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- session
    async def login(self) -> dict[str, Any]:
        """`POST /session` (plain or encrypted password); stale tokens are never sent with it."""
        async with self._login_lock:
            return await self._login_locked()

    async def _login_locked(self) -> dict[str, Any]:
        creds = self.credentials
        password = creds.password
        if creds.encrypted_password:
            key = await self._raw("GET", "/session/encryptionKey", auth=False)
            if not isinstance(key, dict) or not isinstance(key.get("encryptionKey"), str):
                raise ProtocolError("encryptionKey response lacks encryptionKey", code="protocol")
            password = encrypt_password(creds.password, key["encryptionKey"], int(key.get("timeStamp", 0)))
        body = {
            "identifier": creds.identifier,
            "password": password,
            "encryptedPassword": creds.encrypted_password,
        }
        for attempt in range(self.rate_retries + 1):
            try:
                resp_body, headers = await self._send(
                    "POST", "/session", json_body=body, auth=False, login=True, want_headers=True
                )
                break
            except RateLimited:
                if attempt >= self.rate_retries:
                    raise
                await asyncio.sleep(self._backoff(attempt))
        cst, xst = headers.get("CST"), headers.get("X-SECURITY-TOKEN")
        if not cst or not xst or not isinstance(resp_body, dict):
            raise ProtocolError("login answer lacks CST / X-SECURITY-TOKEN", code="protocol")
        self.session.start(cst, xst, resp_body, now=time.monotonic())
        self.logins += 1
        self.audit.record(
            "capital.login", {"account_id": self.session.account_id, "generation": self.session.generation}
        )
        return resp_body

    async def relogin(self, seen_generation: int) -> None:
        """Re-login unless another task already did since `seen_generation` was observed."""
        async with self._login_lock:
            if self.session.generation != seen_generation and self.session.active:
                return
            self.session.clear()
            await self._login_locked()
            if self.wanted_account_id and self.wanted_account_id != self.session.account_id:
                await self._switch_locked(self.wanted_account_id)

    async def switch_account(self, account_id: str) -> dict[str, Any]:
        """`PUT /session` to make `account_id` the active financial account (streams drop on switch)."""
        async with self._login_lock:
            return await self._switch_locked(account_id)

    async def _switch_locked(self, account_id: str) -> dict[str, Any]:
        body, _ = await self._send("PUT", "/session", json_body={"accountId": account_id})
        self.session.account_id = account_id
        self.wanted_account_id = account_id
        self.audit.record("capital.account_switch", {"account_id": account_id})
        return body if isinstance(body, dict) else {}

    async def _keepalive(self) -> None:
        """Ping before the 10-minute idle expiry; re-login before the reported ~1 h hard cap."""
        interval = max(0.05, min(self.keepalive_s / 4, 30.0))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            try:
                if self.session.active and now - self.session.created_at > self.max_session_age_s:
                    await self.relogin(self.session.generation)
                elif now - self.session.last_used >= self.keepalive_s:
                    await self.request("GET", "/ping")
            except CapitalError as exc:  # keep-alive must never die; the next request re-logs in
                self.audit.record("capital.keepalive_failed", {"error": type(exc).__name__, "code": exc.code})

    # ---------------------------------------------------------------- requests
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
        retry_session: bool = True,
        timeout_s: float | None = None,
    ) -> Any:
        """Send an authenticated request and return the parsed JSON body ({} for an empty body)."""
        read = method == "GET"
        order = method == "POST" and path in _ORDER_PATHS
        relogged = False
        transient_tries = rate_tries = 0
        while True:
            gen = self.session.generation
            try:
                if not self.session.active:
                    await self.relogin(gen)
                    gen = self.session.generation
                body, _ = await self._send(
                    method,
                    path,
                    params=params,
                    json_body=json_body,
                    order=order,
                    timeout_s=timeout_s or (self.order_timeout_s if order else None),
                )
                return body
            except SessionExpired as exc:
                if relogged or not retry_session:
                    raise
                await self.relogin(gen)
                relogged = True
                if not read:
                    exc.relogged = True
                    raise
            except RateLimited:
                if rate_tries >= self.rate_retries:
                    raise
                await asyncio.sleep(self._backoff(rate_tries))
                rate_tries += 1
            except CapitalTransient as exc:
                if not read:
                    if isinstance(exc, AmbiguousWrite) or not exc.not_sent:
                        raise AmbiguousWrite(str(exc), status=exc.status, code=exc.code) from exc
                    raise
                if transient_tries >= self.read_retries:
                    raise
                await asyncio.sleep(self._backoff(transient_tries))
                transient_tries += 1

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped at 5 s."""
        return min(5.0, self.backoff_s * (2**attempt)) * (0.5 + self._rng.random() / 2)

    async def _raw(self, method: str, path: str, *, auth: bool = True) -> Any:
        body, _ = await self._send(method, path, auth=auth)
        return body

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
        auth: bool = True,
        order: bool = False,
        login: bool = False,
        want_headers: bool = False,
        timeout_s: float | None = None,
    ) -> tuple[Any, dict[str, str]]:
        """One HTTP exchange: limiter, send, token adoption, error mapping, audit. No retries."""
        async with self.limiter.slot(order=order, login=login):
            headers = {"X-CAP-API-KEY": self.credentials.api_key, "Content-Type": "application/json"}
            if auth:
                headers.update(self.session.headers())
            audit_base = {
                "method": method,
                "path": path,
                "params": redact(params or {}),
                "body": redact(json_body) if json_body is not None else None,
            }
            t0 = time.monotonic()
            try:
                resp = await self._http.request(
                    method,
                    path,
                    params=params,
                    json=json_body,
                    headers=headers,
                    timeout=timeout_s or self.timeout_s,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                self._audit(audit_base, t0, outcome="not_sent", error=type(exc).__name__)
                err = CapitalTransient(f"{method} {path}: connection failed ({type(exc).__name__})")
                err.not_sent = True
                raise err from None
            except httpx.HTTPError as exc:
                # Sent (or partly sent) but no answer: a write may have been processed.
                self._audit(audit_base, t0, outcome="no_answer", error=type(exc).__name__)
                raise CapitalTransient(f"{method} {path}: no answer ({type(exc).__name__})") from None
        if auth:
            # Error answers carry the tokens too (recorded 4xx of authenticated endpoints): a refreshed
            # pair on a 400/404 must not be lost, or the next request would use a dead one.
            self.session.adopt(resp.headers.get("CST"), resp.headers.get("X-SECURITY-TOKEN"))
        self.session.last_used = time.monotonic()
        if resp.status_code >= 400:
            mapped = map_error(resp.status_code, resp.content, path=path, login=not auth)
            self._audit(
                audit_base,
                t0,
                outcome="error",
                status=resp.status_code,
                error=type(mapped).__name__,
                code=mapped.code,
            )
            raise mapped
        try:
            body = json.loads(resp.content) if resp.content.strip() else {}
        except ValueError:
            self._audit(audit_base, t0, outcome="garbled", status=resp.status_code)
            raise ProtocolError(
                f"{method} {path}: HTTP {resp.status_code} body is not JSON",
                status=resp.status_code,
                code="protocol",
            ) from None
        self._audit(audit_base, t0, outcome="ok", status=resp.status_code)
        resp_headers = {k: resp.headers[k] for k in ("CST", "X-SECURITY-TOKEN") if k in resp.headers}
        return body, (resp_headers if want_headers else {})

    def _audit(self, base: dict[str, Any], t0: float, **outcome: Any) -> None:
        payload = {**base, **outcome, "ms": round((time.monotonic() - t0) * 1000, 2)}
        if "error" in payload:
            payload["error"] = redact_text(str(payload["error"]))
        self.audit.record("capital.request", payload)

    @property
    def tokens(self) -> tuple[str, str]:
        """(CST, X-SECURITY-TOKEN) for the streaming messages. Never log these."""
        return self.session.cst, self.session.security_token
