"""``joe telegram [--allow CHAT_ID,...] [--confirm-timeout 60]``: two-way Telegram control.

Polls the Bot API (`TELEGRAM_BOT_TOKEN`, `TELEGRAM_API_URL`) and answers only the allow-listed chats
(default: `TELEGRAM_CHAT_ID`); mutating commands need `/confirm <code>` within the timeout."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from joe.cli._safety_common import start
from joe.cli.exit_codes import ExitCode


def _chat_ids(raw: str, what: str = "chat") -> set[int]:
    out = set()
    for part in raw.split(","):
        part = part.strip()
        if part:
            try:
                out.add(int(part))
            except ValueError:
                raise typer.BadParameter(f"{part!r} is not a Telegram {what} id (an integer)") from None
    return out


def telegram_command(
    allow: Annotated[
        str | None,
        typer.Option(
            "--allow", help="Comma-separated chat ids allowed to command Joe (default TELEGRAM_CHAT_ID)."
        ),
    ] = None,
    confirm_timeout: Annotated[
        float,
        typer.Option("--confirm-timeout", help="Seconds to confirm /halt /reduce /flatten /resume.", min=5),
    ] = 60.0,
    users: Annotated[
        str | None,
        typer.Option(
            "--users",
            help="Comma-separated Telegram user ids allowed to ask/confirm mutating commands "
            "(default TELEGRAM_USER_IDS; unset: any member of an allowed chat, confirming only their own).",
        ),
    ] = None,
) -> None:
    """Answer Telegram commands from allow-listed chats; mutating ones need /confirm <code>."""
    from joe.config.settings import secret_value
    from joe.reporting.alerts.telegram import TELEGRAM_API
    from joe.safety.control import SafetyContext
    from joe.telegram import TelegramControl, build_application

    err = Console(stderr=True, highlight=False)
    rt = start(err)
    try:
        s = rt.settings
        token = secret_value(s.telegram_bot_token)
        chats = _chat_ids(allow if allow is not None else (s.telegram_chat_id or ""))
        if not token:
            err.print("TELEGRAM_BOT_TOKEN is not set (from @BotFather)")
            raise typer.Exit(ExitCode.USAGE)
        if not chats:
            err.print("no chat is allowed: set TELEGRAM_CHAT_ID or pass --allow CHAT_ID[,CHAT_ID...]")
            raise typer.Exit(ExitCode.USAGE)
        people = _chat_ids(users if users is not None else (s.telegram_user_ids or ""), "user")
        control = TelegramControl(
            rt, SafetyContext.from_runtime(rt), chats, confirm_timeout_s=confirm_timeout,
            allowed_users=people or None,
        )  # fmt: skip
        app = build_application(control, token, base_url=s.telegram_api_url or TELEGRAM_API)
        rt.audit.record(
            "telegram.started",
            {"allowed_chats": sorted(chats), "allowed_users": sorted(people), "mode": rt.mode},
        )
        if any(c < 0 for c in chats) and not people:
            err.print(
                "[yellow]warning[/]: a group chat is allowed and TELEGRAM_USER_IDS is not set: any member "
                "of the group may ask /halt /flatten ... (only the asker can confirm). Set TELEGRAM_USER_IDS"
            )
        err.print(f"Joe on Telegram: answering {len(chats)} chat(s) (mode {rt.mode}); Ctrl-C stops")
        # A network error at start (Telegram unreachable for a while) is retried, not an exit: the bot
        # is how an operator halts from a phone. A refused token still stops it at once.
        app.run_polling(drop_pending_updates=True, bootstrap_retries=-1)
    finally:
        rt.close()
