"""`joe run --once --push` against local fake Telegram and Discord, and bad config falling back to paper."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from joe.cli.main import app
from reporting.fakes import FAKE_TELEGRAM_TOKEN, FakeDiscord, FakeTelegram


def test_push_delivers_exactly_one_summary_per_channel(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTelegram() as tg, FakeDiscord() as dc:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", FAKE_TELEGRAM_TOKEN)
        monkeypatch.setenv("TELEGRAM_CHAT_ID", "4242")
        monkeypatch.setenv("TELEGRAM_API_URL", tg.base_url)
        monkeypatch.setenv("DISCORD_WEBHOOK_URL", dc.webhook_url)
        result = CliRunner().invoke(app, ["run", "--once", "--push"])
        assert result.exit_code == 0, result.output
        tg_msgs, dc_texts = tg.messages(), dc.texts()
    # One summary per channel; a long one may arrive in parts (Discord's limit is 2,000 characters),
    # so the run's title must appear exactly once per channel.
    tg_all = "".join(m["text"] for m in tg_msgs)
    dc_all = "".join(dc_texts)
    assert tg_all.count("Joe paper run") == 1, tg_all[:500]
    assert dc_all.count("Joe paper run") == 1, dc_all[:500]
    assert all(m["chat_id"] in ("4242", 4242) for m in tg_msgs)
    assert "regime" in tg_all.lower() and "regime" in dc_all.lower()
    assert "alerts delivered to 2 channel(s)" in result.output
    assert FAKE_TELEGRAM_TOKEN not in result.output


def test_push_with_every_channel_failing_finishes_the_run_then_says_so_and_exits_1(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "config/execution.yaml").write_text(
        "pipeline:\n  universe_size: 40\nalerts:\n  max_retries: 0\n"
    )
    monkeypatch.setenv("DISCORD_WEBHOOK_URL", "http://127.0.0.1:9/api/webhooks/1/unreachable-token-xyz")
    result = CliRunner().invoke(app, ["run", "--once", "--push"])
    assert result.exit_code == 1, result.output
    assert "alerts delivered to 0 channel(s)" in result.output
    assert "Push failed: no alert channel took the summary" in result.output
    assert "Report: " in result.stdout  # the run itself finished and wrote its report
    audit = "".join(f.read_text() for f in (project / "data/audit").glob("*.jsonl"))
    assert '"alert.failed"' in audit
    assert "unreachable-token-xyz" not in audit


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("live:\n  enabled: [true\n", "execution.yaml"),  # malformed YAML
        ("risk:\n  max_positions: ten\n", "risk.max_positions"),  # wrong type
    ],
)
def test_bad_config_names_file_and_key_resolves_paper_and_stops_the_run(
    project: Path, monkeypatch: pytest.MonkeyPatch, text: str, needle: str
) -> None:
    (project / "config/execution.yaml").write_text(
        "live:\n  enabled: true\n" + text if "risk" in text else text
    )
    monkeypatch.setenv("TRADING_MODE", "live")
    mode = CliRunner().invoke(app, ["mode", "--json"])
    doc = json.loads(mode.stdout)
    assert doc["mode"] == "paper"
    problems = " ".join(doc["reasons"] + [g["detail"] for g in doc["gates"]])
    assert needle in problems
    monkeypatch.setenv("JOE_CONFIG", str(project / "config/execution.yaml"))
    # The run does not trade on built-in defaults the user did not choose: one line, exit 2.
    monkeypatch.setenv("TRADING_MODE", "")
    result = CliRunner().invoke(app, ["run", "--once"])
    assert result.exit_code == 2, result.output
    assert "Invalid config" in result.output and needle in result.output
    assert "Report: " not in result.stdout
    assert not (project / "data" / "reports").exists()


def test_refused_live_request_is_loud_log_audit_and_alert(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "config/execution.yaml").write_text("pipeline:\n  universe_size: 40\n")  # live.enabled false
    with FakeDiscord() as dc:
        monkeypatch.setenv("DISCORD_WEBHOOK_URL", dc.webhook_url)
        monkeypatch.setenv("TRADING_MODE", "live")
        result = CliRunner().invoke(app, ["run", "--once"])
        texts = dc.texts()
    assert result.exit_code == 0, result.output
    assert "Paper mode" in result.output  # said on the console
    assert any("PAPER mode" in t and "live" in t for t in texts), texts
    audit = "".join(f.read_text() for f in (project / "data/audit").glob("*.jsonl"))
    assert '"mode.fallback"' in audit
