"""Escaping and splitting: property tests over arbitrary text."""

from __future__ import annotations

import html

from hypothesis import given, settings
from hypothesis import strategies as st

from joe.reporting.alerts.formatting import (
    DISCORD_LIMIT,
    TELEGRAM_LIMIT,
    Alert,
    AlertLevel,
    discord_chunks,
    escape_discord,
    telegram_chunks,
    unescape_discord,
    utf16_len,
)

from .fakes import telegram_html_error

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
special = st.text(alphabet="<>&\"'*_~`|#-[]()\\:@ \nab😀é", max_size=3000)


def _nonspace(s: str) -> str:
    return "".join(s.split())


@settings(max_examples=150, deadline=None)
@given(title=text, body=st.one_of(text, special))
def test_telegram_chunks_fit_parse_and_keep_all_text(title: str, body: str) -> None:
    alert = Alert(AlertLevel.WARNING, title or "t", body)
    limit = 300  # small limit so splitting happens often
    chunks = telegram_chunks(alert, limit)
    assert chunks
    for c in chunks:
        assert utf16_len(c) <= limit and c.strip()
        assert telegram_html_error(c) is None, c
    plain = html.unescape("\n".join(chunks).replace("<b>", "").replace("</b>", ""))
    assert _nonspace(body) in _nonspace(plain)


@settings(max_examples=150, deadline=None)
@given(title=text, body=st.one_of(text, special))
def test_discord_chunks_fit_and_keep_all_text(title: str, body: str) -> None:
    alert = Alert(AlertLevel.INFO, title or "t", body)
    chunks = discord_chunks(alert, 250)
    for c in chunks:
        assert utf16_len(c) <= 250 and c.strip()
        assert not c.endswith("\\") or c.endswith("\\\\")  # never cut an escape in half
    shown = unescape_discord("\n".join(chunks[1:])) if len(chunks) > 1 else ""
    first_body = unescape_discord(chunks[0].split("\n", 1)[1]) if "\n" in chunks[0] else ""
    assert _nonspace(first_body + shown) == _nonspace(body)


@given(st.text(max_size=200))
def test_discord_escape_round_trips(s: str) -> None:
    assert unescape_discord(escape_discord(s)) == s


def test_markup_is_escaped_for_each_platform() -> None:
    alert = Alert(AlertLevel.CRITICAL, "Kill <switch> & *stop*", "P&L <-3%> @everyone _x_ [a](b) `c`")
    [tg] = telegram_chunks(alert)
    assert tg == "🚨 <b>Kill &lt;switch&gt; &amp; *stop*</b>\nP&amp;L &lt;-3%&gt; @everyone _x_ [a](b) `c`"
    [dc] = discord_chunks(alert)
    assert dc == (
        "🚨 **Kill \\<switch\\> & \\*stop\\***\nP&L \\<\\-3%\\> \\@everyone \\_x\\_ \\[a\\]\\(b\\) \\`c\\`"
    )


def test_long_message_splits_on_line_boundaries_at_the_real_limits() -> None:
    lines = [f"line {i:04d} " + "x" * 80 for i in range(200)]  # ~18k characters
    alert = Alert(AlertLevel.INFO, "Daily", "\n".join(lines))
    tg = telegram_chunks(alert)
    dc = discord_chunks(alert)
    assert len(tg) == 5 and all(utf16_len(c) <= TELEGRAM_LIMIT for c in tg)
    assert len(dc) == 10 and all(utf16_len(c) <= DISCORD_LIMIT for c in dc)
    # Every line arrives whole and in order.
    got = [ln for c in tg for ln in c.split("\n")][1:]
    assert got == lines


def test_one_huge_line_is_cut_between_characters_not_inside_entities() -> None:
    alert = Alert(AlertLevel.INFO, "t", "&" * 5000)
    chunks = telegram_chunks(alert)
    assert all(utf16_len(c) <= TELEGRAM_LIMIT for c in chunks)
    assert all(telegram_html_error(c) is None for c in chunks)
    assert sum(c.count("&amp;") for c in chunks) == 5000


def test_levels_are_ordered_and_parse() -> None:
    assert AlertLevel.INFO < AlertLevel.TRADE < AlertLevel.WARNING < AlertLevel.CRITICAL
    assert AlertLevel.parse("Warning") is AlertLevel.WARNING
    assert AlertLevel.parse(AlertLevel.TRADE) is AlertLevel.TRADE
