"""Alert levels, the `Alert` value, platform escaping and splitting at the platforms' limits.

Splitting happens on the raw text, line by line, and each piece is escaped on its own, so a
chunk can never end inside an HTML entity, a tag or a backslash escape. Lengths are counted
in UTF-16 code units, as Telegram (4,096) and Discord (2,000) count them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

TELEGRAM_LIMIT = 4096
DISCORD_LIMIT = 2000
MAX_TITLE = 256


class AlertLevel(IntEnum):
    """Ordered alert levels: info < trade < warning < critical."""

    INFO = 10
    TRADE = 20
    WARNING = 30
    CRITICAL = 40

    @classmethod
    def parse(cls, value: str | AlertLevel) -> AlertLevel:
        """From a config value such as "warning" (case-insensitive)."""
        return value if isinstance(value, AlertLevel) else cls[value.strip().upper()]


_ICONS = {AlertLevel.INFO: "ℹ️", AlertLevel.TRADE: "💹", AlertLevel.WARNING: "⚠️", AlertLevel.CRITICAL: "🚨"}


@dataclass(frozen=True, slots=True)
class Alert:
    """One notification. `key` identifies duplicates (defaults to level+title+body)."""

    level: AlertLevel
    title: str
    body: str = ""
    key: str | None = None

    @property
    def dedup_key(self) -> str:
        return self.key if self.key is not None else f"{self.level.name}|{self.title}|{self.body}"


def utf16_len(text: str) -> int:
    """Length as the platforms count it (UTF-16 code units: an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def escape_telegram_html(text: str) -> str:
    """Escape text for Telegram `parse_mode=HTML` (only <, > and & are special)."""
    return html.escape(text, quote=False)


_DISCORD_SPECIAL = re.compile(r"([\\*_~`|>#\-\[\]()<:@])")
_DISCORD_UNESCAPE = re.compile(r"\\([\\*_~`|>#\-\[\]()<:@])")


def escape_discord(text: str) -> str:
    """Backslash-escape Discord markdown, so text shows literally (no formatting, links, emoji codes)."""
    return _DISCORD_SPECIAL.sub(r"\\\1", text)


def unescape_discord(text: str) -> str:
    """Inverse of `escape_discord` (used by tests and the fake server)."""
    return _DISCORD_UNESCAPE.sub(r"\1", text)


def _hard_split(line: str, escape: Callable[[str], str], limit: int) -> list[str]:
    """Split one over-long raw line into escaped pieces of at most `limit` units.

    Both escapers map each character independently, so the escaped length is the sum of the
    escaped lengths of the characters and a cut between characters never splits an escape.
    """
    pieces: list[str] = []
    cur: list[str] = []
    size = 0
    for ch in line:
        esc = escape(ch)
        n = utf16_len(esc)
        if size + n > limit and cur:
            pieces.append("".join(cur))
            cur, size = [], 0
        cur.append(esc)
        size += n
    if cur:
        pieces.append("".join(cur))
    return pieces


def split_message(header: str, body: str, escape: Callable[[str], str], limit: int) -> list[str]:
    """Chunks of at most `limit` units: the formatted `header` then the escaped `body`, on line breaks.

    `header` is already formatted markup and must fit within `limit`. Blank chunks are dropped
    (the platforms reject empty messages).
    """
    if utf16_len(header) > limit:
        raise ValueError("alert header longer than the platform limit")
    pieces: list[str] = []
    for line in body.split("\n") if body else []:
        esc = escape(line)
        pieces.extend([esc] if utf16_len(esc) <= limit else _hard_split(line, escape, limit))
    chunks: list[str] = []
    cur = header
    for piece in pieces:
        candidate = f"{cur}\n{piece}" if cur else piece
        if utf16_len(candidate) <= limit:
            cur = candidate
        else:
            chunks.append(cur)
            cur = piece
    chunks.append(cur)
    return [c for c in chunks if c.strip()]


def _title(alert: Alert) -> str:
    title = " ".join(alert.title.split())
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


def telegram_chunks(alert: Alert, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """The alert as Telegram HTML messages."""
    header = f"{_ICONS[alert.level]} <b>{escape_telegram_html(_title(alert))}</b>"
    return split_message(header, alert.body, escape_telegram_html, limit)


def discord_chunks(alert: Alert, limit: int = DISCORD_LIMIT) -> list[str]:
    """The alert as Discord markdown messages."""
    header = f"{_ICONS[alert.level]} **{escape_discord(_title(alert))}**"
    return split_message(header, alert.body, escape_discord, limit)
