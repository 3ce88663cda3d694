"""Discord webhook channel: POST {"content": ...} to the webhook URL, mentions disabled."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from joe.reporting.alerts.channel import HttpChannel, Sleep, register_secret
from joe.reporting.alerts.formatting import DISCORD_LIMIT, Alert, AlertLevel, discord_chunks


class DiscordChannel(HttpChannel):
    """Sends alerts to one webhook. 429 answers carry `retry_after` (seconds, float) and Retry-After.

    `base_url`, when given, replaces the webhook URL's scheme and host (tests point it at a fake).
    """

    name = "discord"

    def __init__(
        self,
        webhook_url: str,
        min_level: AlertLevel | str = AlertLevel.INFO,
        http: httpx.AsyncClient | None = None,
        max_retries: int = 3,
        sleep: Sleep | None = None,
        timeout_s: float = 10.0,
        base_url: str | None = None,
        backoff_s: float = 1.0,
    ) -> None:
        kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        super().__init__(min_level, http, max_retries, timeout_s, backoff_s=backoff_s, **kwargs)
        register_secret(webhook_url)
        parts = urlsplit(webhook_url)
        # The last path segment is the webhook token: a secret on its own too.
        register_secret(parts.path.rstrip("/").rsplit("/", 1)[-1])
        if base_url:
            query = f"?{parts.query}" if parts.query else ""
            webhook_url = f"{base_url.rstrip('/')}{parts.path}{query}"
            register_secret(webhook_url)
        self._webhook_url = webhook_url

    def _url(self) -> str:
        return self._webhook_url

    def chunks(self, alert: Alert) -> list[str]:
        return discord_chunks(alert, DISCORD_LIMIT)

    def _payload(self, chunk: str) -> dict[str, Any]:
        return {"content": chunk, "allowed_mentions": {"parse": []}}

    def _retry_after(self, response: httpx.Response) -> float | None:
        try:
            return float(response.json()["retry_after"])
        except (ValueError, KeyError, TypeError):
            return super()._retry_after(response)
