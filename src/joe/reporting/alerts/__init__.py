"""Alerts to Telegram and Discord, and the execution-alert hooks.

The names below are re-exported lazily (`joe.core.lazy`): importing `joe.reporting.alerts.formatting`
(the safety layer does) does not load the HTTP channels (httpx).
"""

from typing import TYPE_CHECKING

from joe.core.lazy import lazy_exports

if TYPE_CHECKING:
    from joe.reporting.alerts.channel import DeliveryResult, HttpChannel, register_secret, scrub
    from joe.reporting.alerts.discord import DiscordChannel
    from joe.reporting.alerts.formatting import Alert, AlertLevel
    from joe.reporting.alerts.hooks import ExecutionAlerts, NullAlerts, fill_alert, run_summary_alert
    from joe.reporting.alerts.manager import AlertChannel, AlertManager, build_channels
    from joe.reporting.alerts.telegram import TelegramChannel
else:  # at run time (the type checker sees the imports above, and flags any other name)
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "joe.reporting.alerts.channel": ["DeliveryResult", "HttpChannel", "register_secret", "scrub"],
            "joe.reporting.alerts.discord": ["DiscordChannel"],
            "joe.reporting.alerts.formatting": ["Alert", "AlertLevel"],
            "joe.reporting.alerts.hooks": [
                "ExecutionAlerts",
                "NullAlerts",
                "fill_alert",
                "run_summary_alert",
            ],
            "joe.reporting.alerts.manager": ["AlertChannel", "AlertManager", "build_channels"],
            "joe.reporting.alerts.telegram": ["TelegramChannel"],
        },
    )

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
