"""`--push`: deliver the run summary to the configured alert channels (Telegram, Discord)."""

from __future__ import annotations

from joe.config.settings import secret_value
from joe.core.logging import get_logger
from joe.reporting.alerts import Alert, AlertLevel, AlertManager, build_channels, run_summary_alert
from joe.reporting.context import ReportContext
from joe.reporting.generator import ReportPaths
from joe.reporting.summary import AISummary
from joe.runtime.bootstrap import Runtime

log = get_logger("joe.runtime.push")


def alert_manager(rt: Runtime) -> AlertManager:
    """The alert manager for this process, with the channels the settings configure."""
    s = rt.settings
    channels = build_channels(
        rt.config.alerts,
        telegram_token=secret_value(s.telegram_bot_token),
        telegram_chat_id=s.telegram_chat_id or None,
        discord_webhook_url=secret_value(s.discord_webhook_url),
        telegram_base_url=s.telegram_api_url or None,
    )
    return AlertManager(channels, rt.audit, rt.config.alerts.dedup_window_s)


async def push_summary(
    rt: Runtime, ctx: ReportContext, summary: AISummary, paths: ReportPaths
) -> tuple[int, bool]:
    """Send one summary per channel: (channels that took it, whether `--push` did its job). Never raises.

    It did its job when at least one configured channel took the summary (or skipped it as a
    duplicate / below its level); no channel configured, or every channel failing, is a failure
    the caller reports (exit 1), since the user asked for the push.
    """
    manager = alert_manager(rt)
    if not manager.enabled:
        log.warning(
            "push.no_channels", hint="set TELEGRAM_BOT_TOKEN + TELEGRAM_CHAT_ID or DISCORD_WEBHOOK_URL"
        )
        return 0, False
    try:
        alert = run_summary_alert(ctx, summary)
        results = await manager.send(alert)
        delivered = sum(1 for r in results if r.ok and r.skipped is None)
        return delivered, any(r.ok for r in results)
    except Exception as exc:  # alerts never break the run
        log.error("push.failed", error=f"{type(exc).__name__}")
        return 0, False
    finally:
        await manager.aclose()


async def notify_mode_fallback(rt: Runtime) -> int:
    """Principle 2, loudly: when live/shadow was asked for and paper was chosen, send a warning alert."""
    manager = alert_manager(rt)
    if not manager.enabled:
        return 0
    d = rt.decision
    body = "\n".join([f"TRADING_MODE={d.requested[:40]!r} resolved to {d.mode.value}.", *d.reasons])
    try:
        alert = Alert(
            AlertLevel.WARNING, f"Joe is running in {d.mode.value.upper()} mode", body, key="mode-fallback"
        )
        results = await manager.send(alert)
        return sum(1 for r in results if r.ok and r.skipped is None)
    except Exception as exc:  # alerts never break the run
        log.error("mode_fallback_alert.failed", error=type(exc).__name__)
        return 0
    finally:
        await manager.aclose()
