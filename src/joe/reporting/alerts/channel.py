"""The HTTP channel base: retries (429 retry_after, 5xx backoff), secret scrubbing, delivery results.

Bot tokens and webhook URLs are secrets. They are registered with `register_secret`, replaced by
"***" in every message this package produces, and a logging filter scrubs them from the
`httpx`/`httpcore` loggers too (httpx logs each request URL at INFO, and a Telegram URL
contains the bot token): `joe.core.logging` installs it, in every process that imports it, whether or
not this module is imported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

import joe.core.logging  # noqa: F401  (installs the httpx/httpcore scrub filter)
from joe.audit import redaction as _redaction
from joe.reporting.alerts.formatting import Alert, AlertLevel

MAX_RETRY_AFTER_S = 60.0


def register_secret(secret: str) -> None:
    """Add a secret to scrub from logs, audit records and messages (the process-wide registry)."""
    _redaction.register_secret(secret)


def scrub(text: str) -> str:
    """`text` with registered secrets and token shapes (bot tokens, webhooks) replaced by ***."""
    return _redaction.redact_text(text)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Outcome of one alert on one channel. `skipped` is set when nothing was sent on purpose."""

    channel: str
    ok: bool
    attempts: int = 0
    parts: int = 0
    status: int | None = None
    error: str | None = None
    skipped: str | None = None


Sleep = Callable[[float], Awaitable[Any]]


class HttpChannel:
    """A channel that POSTs JSON messages; subclasses build the URL, payloads and read 429 bodies."""

    name = "http"

    def __init__(
        self,
        min_level: AlertLevel | str = AlertLevel.INFO,
        http: httpx.AsyncClient | None = None,
        max_retries: int = 3,
        timeout_s: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.min_level = AlertLevel.parse(min_level)
        self._http = http
        self._owns_http = http is None
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self._sleep = sleep
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s

    def __repr__(self) -> str:  # secrets never appear in a repr
        return f"{type(self).__name__}(min_level={self.min_level.name.lower()})"

    # -- subclass hooks -------------------------------------------------------------------
    def _url(self) -> str:
        raise NotImplementedError

    def chunks(self, alert: Alert) -> list[str]:
        raise NotImplementedError

    def _payload(self, chunk: str) -> dict[str, Any]:
        raise NotImplementedError

    def _retry_after(self, response: httpx.Response) -> float | None:
        """Seconds to wait from a 429 response (body or Retry-After header)."""
        header = response.headers.get("retry-after")
        try:
            return float(header) if header is not None else None
        except ValueError:
            return None

    def _accepted(self, response: httpx.Response) -> bool:
        return response.is_success

    # -- delivery ---------------------------------------------------------------------------
    async def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout_s)
        return self._http

    async def aclose(self) -> None:
        """Close the HTTP client if this channel created it."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def send(self, alert: Alert) -> DeliveryResult:
        """Send every chunk in order; stop at the first chunk that cannot be delivered."""
        chunks = self.chunks(alert)
        attempts = 0
        status: int | None = None
        for i, chunk in enumerate(chunks):
            ok, n, status, error = await self._post(self._payload(chunk))
            attempts += n
            if not ok:
                return DeliveryResult(self.name, False, attempts, i, status, scrub(error or "failed"))
        return DeliveryResult(self.name, True, attempts, len(chunks), status)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))

    async def _post(self, payload: dict[str, Any]) -> tuple[bool, int, int | None, str | None]:
        """(ok, attempts, last status, error). Retries 429 (after retry_after), 5xx and network errors."""
        client = await self._client()
        attempt = 0
        while True:
            attempt += 1
            status: int | None = None
            try:
                response = await client.post(self._url(), json=payload, timeout=self.timeout_s)
            except httpx.HTTPError as exc:
                # str(exc) may contain the URL, i.e. the token: scrub before keeping it.
                error = scrub(f"{type(exc).__name__}: {exc}")
                wait = self._backoff(attempt)
            else:
                status = response.status_code
                if self._accepted(response):
                    return True, attempt, status, None
                error = scrub(f"HTTP {status}: {response.text[:200]}")
                if status == 429:
                    after = self._retry_after(response)
                    wait = min(MAX_RETRY_AFTER_S, after) if after is not None else self._backoff(attempt)
                elif status >= 500:
                    wait = self._backoff(attempt)
                else:
                    return False, attempt, status, error  # 4xx: retrying cannot help
            if attempt > self.max_retries:
                return False, attempt, status, f"gave up after {attempt} attempts: {error}"
            await self._sleep(max(0.0, wait))
