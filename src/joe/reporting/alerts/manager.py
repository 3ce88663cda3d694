"""`AlertManager`: level filtering per channel, de-duplication in a time window, never raises.

A failed delivery is logged (secrets scrubbed) and audited as "alert.failed"; it never breaks
the caller. Channels are sent to concurrently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import httpx
import structlog

from joe.config.schema import AlertsConfig
from joe.core.events import AuditSink
from joe.reporting.alerts.channel import DeliveryResult, scrub
from joe.reporting.alerts.discord import DiscordChannel
from joe.reporting.alerts.formatting import Alert, AlertLevel
from joe.reporting.alerts.telegram import TELEGRAM_API, TelegramChannel

log = structlog.get_logger(__name__)


class AlertChannel(Protocol):
    """What the manager needs from a channel."""

    name: str
    min_level: AlertLevel

    async def send(self, alert: Alert) -> DeliveryResult: ...

    async def aclose(self) -> None: ...


class AlertManager:
    """Fans an alert out to the channels whose minimum level it reaches."""

    def __init__(
        self,
        channels: Sequence[AlertChannel],
        audit: AuditSink,
        dedup_window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channels = list(channels)
        self.audit = audit
        self.dedup_window_s = dedup_window_s
        self._clock = clock
        self._recent: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"AlertManager(channels={[c.name for c in self.channels]})"

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    def _is_duplicate(self, key: str) -> bool:
        now = self._clock()
        # Forget keys older than the window so the map stays small in a long-running daemon.
        self._recent = {k: t for k, t in self._recent.items() if now - t < self.dedup_window_s}
        if key in self._recent:
            return True
        self._recent[key] = now
        return False

    async def send(self, alert: Alert) -> list[DeliveryResult]:
        """Deliver `alert`; one result per channel. Never raises."""
        if not self.channels:
            return []
        key = alert.dedup_key
        if self.dedup_window_s > 0 and self._is_duplicate(key):
            return [DeliveryResult(c.name, True, skipped="duplicate") for c in self.channels]
        results = list(await asyncio.gather(*(self._deliver(c, alert) for c in self.channels)))
        if not any(r.ok and r.skipped is None for r in results):
            # Nothing went out: let the same alert through again instead of suppressing it.
            self._recent.pop(key, None)
        return results

    async def _deliver(self, channel: AlertChannel, alert: Alert) -> DeliveryResult:
        if alert.level < channel.min_level:
            return DeliveryResult(channel.name, True, skipped="below min level")
        try:
            result = await channel.send(alert)
        except Exception as exc:  # a channel bug must not break the run
            result = DeliveryResult(channel.name, False, error=scrub(f"{type(exc).__name__}: {exc}"))
        if not result.ok:
            self._failed(alert, result)
        return result

    def _failed(self, alert: Alert, result: DeliveryResult) -> None:
        payload = {
            "channel": result.channel,
            "level": alert.level.name.lower(),
            "title": scrub(alert.title),
            "error": result.error,
            "status": result.status,
            "attempts": result.attempts,
            "parts_sent": result.parts,
        }
        log.warning("alert.failed", **payload)
        try:
            self.audit.record("alert.failed", payload)
        except Exception as exc:
            log.error("alert.audit_failed", error=scrub(str(exc)))

    async def aclose(self) -> None:
        """Close every channel's HTTP client."""
        for c in self.channels:
            try:
                await c.aclose()
            except Exception:
                pass


def build_channels(
    config: AlertsConfig,
    *,
    telegram_token: str | None = None,
    telegram_chat_id: str | None = None,
    discord_webhook_url: str | None = None,
    telegram_base_url: str | None = None,
    discord_base_url: str | None = None,
    http: httpx.AsyncClient | None = None,
) -> list[AlertChannel]:
    """The channels that are configured: Telegram needs token and chat id, Discord a webhook URL."""
    channels: list[AlertChannel] = []
    if config.telegram.enabled and telegram_token and telegram_chat_id:
        channels.append(
            TelegramChannel(
                telegram_token,
                telegram_chat_id,
                base_url=telegram_base_url or TELEGRAM_API,
                min_level=config.telegram.min_level,
                http=http,
                max_retries=config.max_retries,
                timeout_s=config.timeout_s,
            )
        )
    if config.discord.enabled and discord_webhook_url:
        channels.append(
            DiscordChannel(
                discord_webhook_url,
                min_level=config.discord.min_level,
                http=http,
                max_retries=config.max_retries,
                timeout_s=config.timeout_s,
                base_url=discord_base_url,
            )
        )
    return channels
