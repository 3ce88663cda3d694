"""Alerts to Telegram and Discord, and the execution-alert hooks."""

from joe.reporting.alerts.channel import DeliveryResult, HttpChannel, register_secret, scrub
from joe.reporting.alerts.discord import DiscordChannel
from joe.reporting.alerts.formatting import Alert, AlertLevel
from joe.reporting.alerts.hooks import ExecutionAlerts, NullAlerts, fill_alert, run_summary_alert
from joe.reporting.alerts.manager import AlertChannel, AlertManager, build_channels
from joe.reporting.alerts.telegram import TelegramChannel

__all__ = [
    "Alert",
    "AlertChannel",
    "AlertLevel",
    "AlertManager",
    "DeliveryResult",
    "DiscordChannel",
    "ExecutionAlerts",
    "HttpChannel",
    "NullAlerts",
    "TelegramChannel",
    "build_channels",
    "fill_alert",
    "register_secret",
    "run_summary_alert",
    "scrub",
]
