"""`joe mode [--json]`: resolved mode and every gate with PASS/FAIL and why; never prints secrets."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from joe.cli.mode_cmd import app, make_app, register
from joe.config.graduation import DemoRecord
from joe.config.mode import TrackRecord
from joe.config.settings import Settings, env_names
from joe.core.events import NullAudit

REPO = Path(__file__).resolve().parents[2]
SECRETS = {
    "CAPITAL_API_KEY": "ck-SENTINEL-1",
    "CAPITAL_PASSWORD": "pw-SENTINEL-2",
    "GEMINI_API_KEY": "gm-SENTINEL-3",
    "TELEGRAM_BOT_TOKEN": "tg-SENTINEL-4",
    "DISCORD_WEBHOOK_URL": "https://discord.example/SENTINEL-5",
}


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in env_names().values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env; config path under our control
    monkeypatch.setenv("JOE_CONFIG", str(REPO / "config" / "execution.yaml"))
    return tmp_path


def run(
    args: list[str], env: dict[str, str], the_app: typer.Typer = app, *, full: bool = False
) -> tuple[int, str]:
    """Exit code and stdout (with `full`, stdout and stderr: where log lines go depends on whether an
    earlier test configured logging, so a JSON parse must read stdout alone)."""
    result = CliRunner().invoke(the_app, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output if full else result.stdout


def test_json_default_is_paper() -> None:
    code, out = run(["--json"], {})
    doc = json.loads(out)
    assert code == 0 and doc["mode"] == "paper" and doc["requested"] == ""
    assert doc["fell_back"] is False
    assert [g["name"] for g in doc["gates"]] == [
        "trading_mode",
        "settings",
        "config",
        "live_enabled",
        "broker",
        "credentials",
        "endpoint",
        "confirmation",
        "track_record",
        "demo_record",
    ]
    assert doc["credentials"]["CAPITAL_API_KEY"] == "missing"


def test_json_live_on_ibkr_paper_account(clean_env: Path) -> None:
    cfg = clean_env / "exec.yaml"
    cfg.write_text("live:\n  enabled: true\n")
    _, out = run(
        ["--json"],
        {"JOE_CONFIG": str(cfg), "TRADING_MODE": "live", "JOE_BROKER": "ibkr", "IBKR_ACCOUNT": "DU1234567"},
    )
    doc = json.loads(out)
    assert doc["mode"] == "live" and doc["real_money"] is False
    assert all(g["passed"] for g in doc["gates"])
    assert doc["account_id"] == "DU*****67"


def test_track_record_provider_and_audit_factory(clean_env: Path) -> None:
    cfg = clean_env / "exec.yaml"
    cfg.write_text("live:\n  enabled: true\n")
    audit = NullAudit()
    seen: list[Settings] = []

    def provider(settings: Settings) -> TrackRecord:
        seen.append(settings)
        return TrackRecord(paper_days=31, closed_paper_trades=51)

    clean = DemoRecord("ibkr", tuple(date(2026, 11, 1) + timedelta(days=i) for i in range(10)))
    app_ = typer.Typer(add_completion=False)
    register(app_, track_record_provider=provider, audit_factory=lambda s: audit,
             demo_record_provider=lambda s: clean)  # fmt: skip
    the_app = app_
    env = {
        "JOE_CONFIG": str(cfg),
        "TRADING_MODE": "live",
        "JOE_BROKER": "ibkr",
        "IBKR_PORT": "4001",
        "IBKR_ACCOUNT": "U42",
        "JOE_LIVE_CONFIRM": "U42",
    }
    doc = json.loads(run(["--json"], env, the_app)[1])
    assert doc["mode"] == "live" and doc["real_money"] is True and seen
    assert [e for e, _, _ in audit.records] == ["config.loaded", "mode.resolved"]

    def broken(settings: Settings) -> TrackRecord:
        raise RuntimeError("database is locked")

    doc = json.loads(run(["--json"], env, make_app(track_record_provider=broken))[1])
    track = next(g for g in doc["gates"] if g["name"] == "track_record")
    assert doc["mode"] == "paper" and not track["passed"] and "no store" in track["detail"]


def test_table_shows_each_gate_with_pass_fail_and_why(clean_env: Path) -> None:
    bad = clean_env / "bad.yaml"
    bad.write_text("risk:\n  max_positions: ten\n")
    code, out = run([], {"JOE_CONFIG": str(bad), "TRADING_MODE": "live", "JOE_BROKER": "capital"})
    assert code == 0
    assert "Mode: PAPER" in out
    for gate in ("trading_mode", "settings", "config", "live_enabled", "credentials", "endpoint"):
        assert gate in out
    assert "PASS" in out and "FAIL" in out
    assert "risk.max_positions" in out  # the config error is shown, and we still ran (in paper)
    assert "missing: CAPITAL_API_KEY" in out.replace("\n", " ").replace("│", "")


def test_secrets_never_printed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    env = {
        **SECRETS,
        "TRADING_MODE": "live",
        "JOE_BROKER": "capital",
        "CAPITAL_IDENTIFIER": "me",
        "CAPITAL_DEMO": "false",
        "CAPITAL_ACCOUNT_ID": "ACC1",
        "JOE_LIVE_CONFIRM": "ACC2",
    }
    outputs = [run(args, env, full=True)[1] for args in ([], ["--json"])]
    doc = json.loads(run(["--json"], env)[1])
    assert (
        doc["credentials"]["CAPITAL_API_KEY"] == "set" and doc["credentials"]["DISCORD_WEBHOOK_URL"] == "set"
    )
    text = "".join(outputs) + caplog.text + repr([r.msg for r in caplog.records])
    for value in SECRETS.values():
        assert value not in text


def test_register_mounts_on_another_app() -> None:
    main = typer.Typer()

    @main.command()
    def version() -> None:
        typer.echo("0")

    register(main)
    doc = json.loads(run(["mode", "--json"], {"TRADING_MODE": "nonsense"}, main)[1])
    assert doc["mode"] == "paper" and doc["fell_back"] is True
    assert "not one of paper, live, shadow" in doc["reasons"][0]


def test_shadow_marks_live_only_gates_not_needed(clean_env: Path) -> None:
    """Shadow needs settings/config/broker/credentials/endpoint: the live-only gates (TRADING_MODE=live,
    live.enabled, confirmation, records) show n/a, never FAIL (review r1012 README c)."""
    env = {"TRADING_MODE": "shadow", "JOE_BROKER": "ibkr", "IBKR_PORT": "7497", "IBKR_ACCOUNT": "DU1234567"}
    code, out = run([], env)
    assert code == 0 and "Mode: SHADOW" in out
    assert "gates for shadow" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 3}
    for live_only in ("trading_mode", "live_enabled"):
        assert "n/a" in rows[live_only] and "FAIL" not in rows[live_only], rows[live_only]
    for needed in ("settings", "config", "broker", "credentials", "endpoint"):
        assert "PASS" in rows[needed], rows[needed]
    assert "FAIL" not in out
    doc = json.loads(run(["--json"], env)[1])
    needed = {g["name"]: g["needed"] for g in doc["gates"]}
    assert needed["trading_mode"] is False and needed["live_enabled"] is False
    assert needed["endpoint"] is True and needed["credentials"] is True
    # a shadow refused for a shadow gate still shows that gate as FAIL, and falls back to paper
    code, out = run([], {**env, "IBKR_ACCOUNT": "U7654321"})  # a live account on a paper port
    assert "Mode: PAPER" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 3}
    assert "FAIL" in rows["endpoint"]


def test_paper_against_a_real_money_endpoint_says_what_it_means(clean_env: Path) -> None:
    """No "PAPER … real money=yes": the first line names the endpoint, and a line says PAPER sends it
    no order (review r1012 README d)."""
    env = {"TRADING_MODE": "paper", "JOE_BROKER": "ibkr", "IBKR_PORT": "7496", "IBKR_ACCOUNT": "U7654321"}
    code, out = run([], env)
    assert code == 0 and "Mode: PAPER" in out
    assert "real money=" not in out
    assert "endpoint: a real-money account" in out
    assert "PAPER sends it no order" in out and "what TRADING_MODE=live would need" in out
    code, out = run([], {**env, "TRADING_MODE": "", "IBKR_PORT": "7497", "IBKR_ACCOUNT": "DU1234567"})
    assert "endpoint: a paper/demo account" in out and "sends it no order" not in out
    code, out = run([], {})
    assert "endpoint: none (sim broker)" in out


def test_broker_from_the_command_line_is_named_as_such(clean_env: Path) -> None:
    """`--broker sim` with JOE_BROKER=ibkr: the broker gate says --broker=sim, not JOE_BROKER=sim
    (review r1012 README e)."""
    from joe.config.loader import load_execution_config_tolerant
    from joe.config.mode import resolve_mode
    from joe.config.settings import load_settings

    env = {"TRADING_MODE": "live", "JOE_BROKER": "ibkr"}
    settings = load_settings(env)
    config, _ = load_execution_config_tolerant(settings.config_path)
    from_env = resolve_mode(settings, config, TrackRecord(0, 0))
    broker_gate = next(g for g in from_env.gates if g.name == "broker")
    assert broker_gate.detail == "JOE_BROKER=ibkr"
    flag = settings.model_copy(
        update={"broker": "sim", "sources": {**settings.sources, "JOE_BROKER": "--broker"}}
    )
    decision = resolve_mode(flag, config, TrackRecord(0, 0))
    broker_gate = next(g for g in decision.gates if g.name == "broker")
    assert broker_gate.detail == "--broker=sim (sim cannot trade live)" and not broker_gate.passed
    assert any(r.startswith("broker: --broker=sim") for r in decision.reasons)
    assert not any("JOE_BROKER=sim" in r for r in decision.reasons)
