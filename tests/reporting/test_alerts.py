"""Telegram and Discord channels and AlertManager against local fake servers."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from joe.config.schema import AlertsConfig, ChannelConfig
from joe.core.events import NullAudit
from joe.reporting.alerts import (
    Alert,
    AlertLevel,
    AlertManager,
    DiscordChannel,
    TelegramChannel,
    build_channels,
    run_summary_alert,
)
from joe.reporting.context import ReportContext

from .fakes import (
    FAKE_DISCORD_WEBHOOK_PATH,
    FAKE_TELEGRAM_TOKEN,
    FakeDiscord,
    FakeTelegram,
    Reply,
    rate_limited_discord,
    rate_limited_telegram,
)

DISCORD_TOKEN = FAKE_DISCORD_WEBHOOK_PATH.rsplit("/", 1)[1]


class Sleeps:
    """Injectable sleep that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def dc() -> Iterator[FakeDiscord]:
    with FakeDiscord() as server:
        yield server


def telegram(server: FakeTelegram, sleeps: Sleeps, **kw: object) -> TelegramChannel:
    return TelegramChannel(FAKE_TELEGRAM_TOKEN, "4242", base_url=server.base_url, sleep=sleeps, **kw)  # type: ignore[arg-type]


def discord(server: FakeDiscord, sleeps: Sleeps, **kw: object) -> DiscordChannel:
    return DiscordChannel(server.webhook_url, sleep=sleeps, **kw)  # type: ignore[arg-type]


async def test_telegram_sends_html_message(tg: FakeTelegram) -> None:
    ch = telegram(tg, Sleeps())
    result = await ch.send(Alert(AlertLevel.TRADE, "Fill <AAPL> & co", "qty 10 @ 212.49"))
    await ch.aclose()
    assert (result.ok, result.parts, result.attempts, result.status) == (True, 1, 1, 200)
    [msg] = tg.messages()
    assert msg["chat_id"] == "4242" and msg["parse_mode"] == "HTML"
    assert msg["text"] == "💹 <b>Fill &lt;AAPL&gt; &amp; co</b>\nqty 10 @ 212.49"


async def test_discord_sends_escaped_markdown_without_mentions(dc: FakeDiscord) -> None:
    ch = discord(dc, Sleeps())
    result = await ch.send(Alert(AlertLevel.WARNING, "Margin *low*", "@everyone check _now_"))
    await ch.aclose()
    assert result.ok and result.status == 204
    [msg] = dc.messages()
    assert msg["allowed_mentions"] == {"parse": []}
    assert dc.texts() == ["⚠️ **Margin *low***\n@everyone check _now_"]
    assert "\\*low\\*" in msg["content"] and "\\_now\\_" in msg["content"]


async def test_long_messages_are_split_at_each_platform_limit(tg: FakeTelegram, dc: FakeDiscord) -> None:
    body = "\n".join(f"{i:03d} <{'y' * 60}> & more" for i in range(300))  # ~25k chars, with escapes
    alert = Alert(AlertLevel.INFO, "Daily summary", body)
    t, d = telegram(tg, Sleeps()), discord(dc, Sleeps())
    rt, rd = await t.send(alert), await d.send(alert)
    await t.aclose()
    await d.aclose()
    assert rt.ok and rd.ok
    assert rt.parts == len(tg.messages()) >= 7
    assert rd.parts == len(dc.messages()) >= 12  # 300 lines of 76 escaped chars
    # The fakes refuse > 4096 / > 2000 and unparsable HTML, so every part was valid; the text is whole.
    assert all(r.status in (200, 204) for r in (rt, rd))
    lines = [ln for m in tg.messages() for ln in m["text"].split("\n")][1:]
    assert len(lines) == 300 and lines[0] == f"000 &lt;{'y' * 60}&gt; &amp; more"


async def test_telegram_429_honours_retry_after(tg: FakeTelegram) -> None:
    tg.enqueue(rate_limited_telegram(7))
    sleeps = Sleeps()
    result = await telegram(tg, sleeps).send(Alert(AlertLevel.INFO, "hi"))
    assert result.ok and result.attempts == 2
    assert sleeps.waits == [7.0]
    assert len(tg.messages()) == 2


async def test_discord_429_honours_retry_after_body_and_header(dc: FakeDiscord) -> None:
    dc.enqueue(
        rate_limited_discord(1.5), Reply(429, {"message": "rate limited"}, headers={"Retry-After": "4"})
    )
    sleeps = Sleeps()
    result = await discord(dc, sleeps).send(Alert(AlertLevel.INFO, "hi"))
    assert result.ok and result.attempts == 3
    assert sleeps.waits == [1.5, 4.0]


async def test_retry_after_is_capped(tg: FakeTelegram) -> None:
    tg.enqueue(rate_limited_telegram(3600))
    sleeps = Sleeps()
    assert (await telegram(tg, sleeps).send(Alert(AlertLevel.INFO, "hi"))).ok
    assert sleeps.waits == [60.0]


async def test_5xx_is_retried_with_backoff_then_given_up(tg: FakeTelegram) -> None:
    tg.enqueue(*[Reply(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})] * 10)
    sleeps = Sleeps()
    result = await telegram(tg, sleeps, max_retries=3, backoff_s=0.5).send(Alert(AlertLevel.INFO, "hi"))
    assert not result.ok
    assert result.attempts == 4 and len(tg.requests) == 4
    assert sleeps.waits == [0.5, 1.0, 2.0]
    assert result.status == 502 and "gave up after 4 attempts" in (result.error or "")


async def test_5xx_then_success(dc: FakeDiscord) -> None:
    dc.enqueue(Reply(500, {"message": "oops"}), Reply(503, {"message": "oops"}))
    sleeps = Sleeps()
    result = await discord(dc, sleeps, backoff_s=1.0).send(Alert(AlertLevel.INFO, "hi"))
    assert result.ok and result.attempts == 3 and sleeps.waits == [1.0, 2.0]


async def test_4xx_is_not_retried(tg: FakeTelegram) -> None:
    tg.enqueue(Reply(403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked"}))
    sleeps = Sleeps()
    result = await telegram(tg, sleeps).send(Alert(AlertLevel.INFO, "hi"))
    assert not result.ok and result.attempts == 1 and sleeps.waits == []


async def test_secrets_never_logged_or_audited(
    tg: FakeTelegram, dc: FakeDiscord, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):  # Joe's start-up quiets them; this test wants their lines
        caplog.set_level(logging.DEBUG, logger=name)
    tg.enqueue(*[Reply(500, {"ok": False})] * 5)
    dc.enqueue(Reply(404, {"message": "Unknown Webhook", "code": 10015}))
    with FakeTelegram() as gone:
        dead_url = gone.base_url  # closed port: connection refused, httpx error text includes the URL
    dead = TelegramChannel(FAKE_TELEGRAM_TOKEN, "1", base_url=dead_url, sleep=Sleeps(), max_retries=1)
    audit = NullAudit()
    mgr = AlertManager([telegram(tg, Sleeps(), max_retries=2), discord(dc, Sleeps()), dead], audit)
    results = await mgr.send(Alert(AlertLevel.CRITICAL, "Kill switch", "halted"))
    await mgr.aclose()
    assert [r.ok for r in results] == [False, False, False]
    assert [r[0] for r in audit.records] == ["alert.failed"] * 3
    everything = (
        caplog.text + capsys.readouterr().out + repr(audit.records) + repr(results) + repr(mgr.channels)
    )
    assert "HTTP Request" in caplog.text  # httpx did log the requests ...
    assert FAKE_TELEGRAM_TOKEN not in everything  # ... but without the token
    assert DISCORD_TOKEN not in everything and FAKE_DISCORD_WEBHOOK_PATH not in everything
    assert "ConnectError" in repr(results[2].error)


async def test_manager_levels_dedup_and_window(tg: FakeTelegram, dc: FakeDiscord) -> None:
    now = [1000.0]
    t = telegram(tg, Sleeps(), min_level="info")
    d = discord(dc, Sleeps(), min_level=AlertLevel.WARNING)
    mgr = AlertManager([t, d], NullAudit(), dedup_window_s=300, clock=lambda: now[0])
    info = Alert(AlertLevel.INFO, "Run done", "ok")
    first = await mgr.send(info)
    assert [(r.channel, r.ok, r.skipped) for r in first] == [
        ("telegram", True, None),
        ("discord", True, "below min level"),
    ]
    again = await mgr.send(Alert(AlertLevel.INFO, "Run done", "ok"))
    assert {r.skipped for r in again} == {"duplicate"}
    now[0] += 301
    await mgr.send(info)
    await mgr.send(Alert(AlertLevel.CRITICAL, "Kill switch", "on"))
    await mgr.aclose()
    assert len(tg.messages()) == 3
    assert len(dc.messages()) == 1 and "Kill switch" in dc.texts()[0]


async def test_failed_alert_is_not_suppressed_as_duplicate(tg: FakeTelegram) -> None:
    tg.enqueue(Reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}))
    mgr = AlertManager([telegram(tg, Sleeps())], NullAudit(), dedup_window_s=300)
    alert = Alert(AlertLevel.WARNING, "Disconnected", "ibkr")
    assert not (await mgr.send(alert))[0].ok
    assert (await mgr.send(alert))[0].ok
    await mgr.aclose()


async def test_broken_channel_never_raises() -> None:
    class Broken:
        name = "broken"
        min_level = AlertLevel.INFO

        async def send(self, alert: Alert) -> None:
            raise RuntimeError("boom")

        async def aclose(self) -> None:
            raise RuntimeError("boom")

    audit = NullAudit()
    mgr = AlertManager([Broken()], audit)  # type: ignore[list-item]
    [result] = await mgr.send(Alert(AlertLevel.INFO, "x"))
    await mgr.aclose()
    assert not result.ok and "RuntimeError: boom" in (result.error or "")
    assert audit.records[0][0] == "alert.failed"


async def test_run_summary_delivers_exactly_one_message_per_channel(
    tg: FakeTelegram, dc: FakeDiscord, ctx: ReportContext
) -> None:
    """What `joe run --once --push` does at the end of a run, with both fake servers configured."""
    channels = build_channels(
        AlertsConfig(),
        telegram_token=FAKE_TELEGRAM_TOKEN,
        telegram_chat_id="4242",
        telegram_base_url=tg.base_url,
        discord_webhook_url=dc.webhook_url,
    )
    mgr = AlertManager(channels, NullAudit())
    alert = run_summary_alert(ctx)
    results = await mgr.send(alert)
    await mgr.send(run_summary_alert(ctx))  # a second push of the same run is de-duplicated
    await mgr.aclose()
    assert [(r.channel, r.ok, r.parts) for r in results] == [("telegram", True, 1), ("discord", True, 1)]
    assert len(tg.messages()) == 1 and len(dc.messages()) == 1
    assert "bull regime, 5 signals" in tg.messages()[0]["text"]
    assert "bull regime, 5 signals" in dc.texts()[0]


def test_build_channels_only_configured_ones() -> None:
    cfg = AlertsConfig()
    assert build_channels(cfg) == []
    assert build_channels(cfg, telegram_token=FAKE_TELEGRAM_TOKEN) == []  # no chat id
    off = AlertsConfig(telegram=ChannelConfig(enabled=False), discord=ChannelConfig(min_level="warning"))
    [only] = build_channels(
        off,
        telegram_token=FAKE_TELEGRAM_TOKEN,
        telegram_chat_id="1",
        discord_webhook_url="https://discord.com" + FAKE_DISCORD_WEBHOOK_PATH,
    )
    assert isinstance(only, DiscordChannel) and only.min_level is AlertLevel.WARNING
    [t] = build_channels(
        cfg, telegram_token=FAKE_TELEGRAM_TOKEN, telegram_chat_id="9", discord_webhook_url=""
    )
    assert isinstance(t, TelegramChannel) and FAKE_TELEGRAM_TOKEN not in repr(t)
