"""Two-way Telegram control (python-telegram-bot): `TelegramControl` answers and confirms commands,
`build_application` wires it to the Bot API, `joe telegram` runs it. Only allow-listed chats are
answered; mutating commands need a confirmation code within a time limit; every message is audited."""

from joe.telegram.bot import build_application
from joe.telegram.control import TelegramControl

__all__ = ["TelegramControl", "build_application"]
