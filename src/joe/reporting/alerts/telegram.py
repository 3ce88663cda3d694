"""Telegram Bot API channel: POST {base}/bot{token}/sendMessage with parse_mode HTML."""

from __future__ import annotations

from typing import Any

import httpx

from joe.reporting.alerts.channel import HttpChannel, Sleep, register_secret
from joe.reporting.alerts.formatting import TELEGRAM_LIMIT, Alert, AlertLevel, telegram_chunks

TELEGRAM_API = "https://api.telegram.org"


class TelegramChannel(HttpChannel):
    """Sends alerts to one chat. 429 answers carry `parameters.retry_after` (seconds)."""

    name = "telegram"

    def __init__(
        self,
        token: str,
        chat_id: str,
        base_url: str = TELEGRAM_API,
        min_level: AlertLevel | str = AlertLevel.INFO,
        http: httpx.AsyncClient | None = None,
        max_retries: int = 3,
        sleep: Sleep | None = None,
        timeout_s: float = 10.0,
        backoff_s: float = 1.0,
    ) -> None:
        kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        super().__init__(min_level, http, max_retries, timeout_s, backoff_s=backoff_s, **kwargs)
        register_secret(token)
        self._token = token
        self.chat_id = chat_id
        self.base_url = base_url.rstrip("/")

    def _url(self) -> str:
        return f"{self.base_url}/bot{self._token}/sendMessage"

    def chunks(self, alert: Alert) -> list[str]:
        return telegram_chunks(alert, TELEGRAM_LIMIT)

    def _payload(self, chunk: str) -> dict[str, Any]:
        return {
            "chat_id": self.chat_id,
            "text": chunk,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }

    def _accepted(self, response: httpx.Response) -> bool:
        if not response.is_success:
            return False
        try:
            return bool(response.json().get("ok", False))
        except ValueError:
            return False

    def _retry_after(self, response: httpx.Response) -> float | None:
        try:
            value = response.json()["parameters"]["retry_after"]
            return float(value)
        except (ValueError, KeyError, TypeError):
            return super()._retry_after(response)
