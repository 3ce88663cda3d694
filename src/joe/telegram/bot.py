"""`build_application`: python-telegram-bot's `Application` around a `TelegramControl`.

Every text message (commands included) goes to `TelegramControl.handle` with its sender's user id
and Joe's own username (from ``getMe``, to recognise ``/cmd@JoeBot``); its answer, if any, is sent
back to the same chat as plain text. `base_url` points the library at another Bot API server (the
tests' local fake; `TELEGRAM_API_URL`)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from joe.telegram.control import TelegramControl

TELEGRAM_API = "https://api.telegram.org"


def build_application(control: TelegramControl, token: str, base_url: str = TELEGRAM_API) -> Application:  # type: ignore[type-arg]
    root = base_url.rstrip("/")
    app = Application.builder().token(token).base_url(f"{root}/bot").base_file_url(f"{root}/file/bot").build()

    async def on_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        chat = update.effective_chat
        if msg is None or chat is None or not msg.text:
            return
        if control.bot_username is None:
            control.bot_username = context.bot.username  # from getMe at start-up
        user = update.effective_user
        answer = await control.handle(chat.id, msg.text, user.id if user is not None else None)
        if answer is not None:
            await context.bot.send_message(chat_id=chat.id, text=answer[:4000])

    # New messages only: an edited old "/halt ..." or "/confirm ..." must not act again.
    app.add_handler(MessageHandler(filters.TEXT & filters.UpdateType.MESSAGE, on_message))
    return app
