"""Issue 10 "gates that cannot be fooled": each bypass that passed before, as a test that now refuses it."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from joe.cli.mode_cmd import app
from joe.config.graduation import DemoRecord
from joe.config.mode import TrackRecord, TradingMode, resolve_mode
from joe.config.schema import ExecutionConfig
from joe.config.settings import env_names, load_settings
from joe.core.events import NullAudit

REPO = Path(__file__).resolve().parents[2]
NO_RECORD = TrackRecord(paper_days=0, closed_paper_trades=0)
# A clean demo-live record (issue 19): the gates under test here are the others.
CLEAN = DemoRecord("any", tuple(date(2026, 11, 1) + timedelta(days=i) for i in range(10)))


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in env_names().values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cfg(**live: Any) -> ExecutionConfig:
    return ExecutionConfig.model_validate({"live": {"enabled": True, **live}})


def resolve(
    env: dict[str, str], config: ExecutionConfig | None = None, record: TrackRecord = NO_RECORD
) -> Any:
    audit = NullAudit()
    return resolve_mode(load_settings(env), config or cfg(), record, audit=audit, demo_record=CLEAN), audit


def gate(decision: Any, name: str) -> Any:
    return next(g for g in decision.gates if g.name == name)


IBKR_LIVE = {
    "TRADING_MODE": "live",
    "JOE_BROKER": "ibkr",
    "IBKR_PORT": "7496",
    "IBKR_ACCOUNT": "U7654321",
    "JOE_LIVE_CONFIRM": "U7654321",
}
CAPITAL = {
    "TRADING_MODE": "live",
    "JOE_BROKER": "capital",
    "CAPITAL_API_KEY": "k-1",
    "CAPITAL_IDENTIFIER": "me@example.com",
    "CAPITAL_PASSWORD": "p-2",
    "CAPITAL_ACCOUNT_ID": "ACC-1",
    "JOE_LIVE_CONFIRM": "ACC-1",
}


# ------------------------------------------------------------------ track-record floor
@pytest.mark.parametrize(("days", "trades"), [(0, 0), (29, 50), (30, 49), (1, 1)])
def test_min_paper_days_and_trades_cannot_go_below_the_floor(days: int, trades: int) -> None:
    decision, _ = resolve(IBKR_LIVE, cfg(min_paper_days=days, min_paper_trades=trades))
    assert decision.mode is TradingMode.PAPER
    tr = gate(decision, "track_record")
    assert not tr.passed and "floor" in tr.detail and ">= 30 days and >= 50" in tr.detail


def test_floor_is_met_by_a_real_record_and_skipped_only_by_the_audited_override() -> None:
    ok, _ = resolve(IBKR_LIVE, cfg(min_paper_days=0, min_paper_trades=0), TrackRecord(30, 50))
    assert ok.mode is TradingMode.LIVE and ok.real_money
    reason = "approved by the desk head, ticket RISK-9"
    over, audit = resolve(
        IBKR_LIVE,
        cfg(min_paper_days=0, min_paper_trades=0, track_record_override={"enabled": True, "reason": reason}),
    )
    assert over.mode is TradingMode.LIVE and over.override_used
    expected = {"gate": "track_record", "reason": reason, "broker": "ibkr", "account_id": "U7654321"}
    assert ("mode.override", expected) in [(e, p) for e, p, _ in audit.records]


# ------------------------------------------------------------------ IBKR account <-> port
@pytest.mark.parametrize(
    ("port", "account"),
    [("7497", "U7654321"), ("4002", "U1"), ("7496", "DU1234567"), ("4001", "DF55"), ("17497", "U7654321")],
)
def test_ibkr_account_must_agree_with_the_port(port: str, account: str) -> None:
    env = {**IBKR_LIVE, "IBKR_PORT": port, "IBKR_ACCOUNT": account, "JOE_LIVE_CONFIRM": account}
    decision, _ = resolve(env, record=TrackRecord(90, 90))
    assert decision.mode is TradingMode.PAPER and not decision.real_money
    assert not gate(decision, "endpoint").passed and "contradictory" in gate(decision, "endpoint").detail


def test_ibkr_paper_port_with_live_account_is_not_live_even_in_shadow() -> None:
    decision, _ = resolve({**IBKR_LIVE, "TRADING_MODE": "shadow", "IBKR_PORT": "7497"})
    assert decision.mode is TradingMode.PAPER


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_non_standard_port_is_allowed_for_a_paper_account_and_never_called_a_simulator(mode: str) -> None:
    """Review r16, defect 4: a port never says "simulator" (the simulator says so on the wire)."""
    env = {**IBKR_LIVE, "TRADING_MODE": mode, "IBKR_PORT": "17497", "IBKR_ACCOUNT": "DU1234567"}
    decision, _ = resolve(env)
    assert not decision.real_money and not decision.simulator
    assert decision.mode.value == mode
    detail = gate(decision, "endpoint").detail
    assert "17497" in detail and "not a standard" in detail


@pytest.mark.parametrize(
    ("port", "account", "ok", "real_money"),
    [
        (4004, "DU1234567", True, False),  # the compose gateway image's paper relay
        (4003, "U1234567", True, True),  # its live relay
        (4003, "DU1234567", False, False),  # live relay, paper account: contradictory
        (4004, "U1234567", False, False),  # paper relay, live account: contradictory
        (7497, "DU1234567", True, False),
    ],
)
def test_gateway_image_relay_ports(port: int, account: str, ok: bool, real_money: bool) -> None:
    from joe.config.endpoints import ibkr_endpoint

    v = ibkr_endpoint(port, account)
    assert (v.ok, v.real_money, v.simulator) == (ok, real_money, False), v.detail


def test_the_simulator_notice_is_recognised_and_nothing_else() -> None:
    from joe.config.endpoints import IBKR_SIMULATOR_FARM, is_ibkr_simulator_notice

    assert is_ibkr_simulator_notice(-1, 2104, f"Market data farm connection is OK:{IBKR_SIMULATOR_FARM}")
    assert not is_ibkr_simulator_notice(-1, 2104, "Market data farm connection is OK:usfarm")
    assert not is_ibkr_simulator_notice(7, 2104, f"Market data farm connection is OK:{IBKR_SIMULATOR_FARM}")
    assert not is_ibkr_simulator_notice(-1, 2106, f"HMDS data farm connection is OK:{IBKR_SIMULATOR_FARM}x")


# ------------------------------------------------------------------ Capital host allow-list
@pytest.mark.parametrize(
    ("demo", "var", "url"),
    [
        ("true", "CAPITAL_API_URL", "https://api-capital.backend-capital.com./"),  # the case
        ("true", "CAPITAL_API_URL", "https://API-CAPITAL.backend-capital.com"),
        ("true", "CAPITAL_API_URL", "https://demo-api-capital.backend-capital.com.evil.example"),
        ("true", "CAPITAL_API_URL", "https://user@demo-api-capital.backend-capital.com"),
        ("true", "CAPITAL_API_URL", "http://demo-api-capital.backend-capital.com"),
        ("true", "CAPITAL_API_URL", "https://10.0.0.1"),
        ("false", "CAPITAL_API_URL", "https://demo-api-capital.backend-capital.com"),
        ("false", "CAPITAL_API_URL", "https://api-capital.backend-capital.com.:443"),
        ("false", "CAPITAL_API_URL", "http://127.0.0.1:8700"),
        ("true", "CAPITAL_STREAM_URL", "wss://api-streaming-capital.backend-capital.com./connect"),
        ("true", "CAPITAL_STREAM_URL", "wss://evil.example/connect"),
    ],
)
def test_capital_hosts_must_be_on_the_allow_list(demo: str, var: str, url: str) -> None:
    for requested in ("live", "shadow"):
        env = {**CAPITAL, "TRADING_MODE": requested, "CAPITAL_DEMO": demo, var: url}
        decision, _ = resolve(env, record=TrackRecord(90, 90))
        assert decision.mode is TradingMode.PAPER, (url, decision.gates)
        assert not decision.real_money
        assert not gate(decision, "endpoint").passed


@pytest.mark.parametrize(
    ("demo", "api", "real"),
    [
        ("true", "http://127.0.0.1:8700/api/v1", False),
        ("true", "https://demo-api-capital.backend-capital.com", False),
        ("false", "https://api-capital.backend-capital.com", True),
        ("false", None, True),
    ],
)
def test_capital_allowed_hosts(demo: str, api: str | None, real: bool) -> None:
    env = {**CAPITAL, "CAPITAL_DEMO": demo} | ({"CAPITAL_API_URL": api} if api else {})
    decision, _ = resolve(env, record=TrackRecord(90, 90))
    assert decision.mode is TradingMode.LIVE and decision.real_money is real


# ------------------------------------------------------------------ provenance
def test_provenance_names_env_dotenv_yaml_and_default(clean_env: Path) -> None:
    dotenv = clean_env / ".env"
    dotenv.write_text("TRADING_MODE=live\nIBKR_PORT=7496\n")
    (clean_env / "exec.yaml").write_text("live:\n  enabled: true\nbrokers:\n  ibkr:\n    account: U7654321\n")
    settings = load_settings(
        {"JOE_BROKER": "ibkr", "JOE_CONFIG": str(clean_env / "exec.yaml"), "JOE_LIVE_CONFIRM": "U7654321"},
        dotenv,
    )
    from joe.config.loader import load_execution_config_tolerant

    config, _ = load_execution_config_tolerant(settings.config_path)
    audit = NullAudit()
    decision = resolve_mode(settings, config, TrackRecord(90, 90), audit=audit, demo_record=CLEAN)
    p = decision.provenance
    assert p["TRADING_MODE"].startswith(".env") and p["IBKR_PORT"].startswith(".env")
    assert p["JOE_BROKER"] == "env" and p["JOE_LIVE_CONFIRM"] == "env"
    assert p["IBKR_ACCOUNT"].startswith("yaml") and p["live.enabled"].startswith("yaml")
    assert p["IBKR_HOST"] == "default" and p["live.min_paper_days"] == "default"
    assert decision.mode is TradingMode.LIVE and decision.real_money
    assert any(".env file selects LIVE with REAL MONEY" in w for w in decision.warnings)
    resolved = next(p for e, p, _ in audit.records if e == "mode.resolved")
    assert resolved["provenance"] == p and resolved["warnings"] == decision.warnings


def test_joe_mode_prints_provenance_and_simulator_port(clean_env: Path) -> None:
    (clean_env / ".env").write_text("TRADING_MODE=paper\n")
    env = {"JOE_BROKER": "ibkr", "IBKR_PORT": "17497", "IBKR_ACCOUNT": "DU1234567"}
    result = CliRunner().invoke(app, [], env=env)
    out = result.stdout
    assert result.exit_code == 0
    assert "endpoint: a paper/demo account" in out  # before: real money=yes on a non-standard port
    assert "settings from:" in out and "TRADING_MODE=.env" in out and "JOE_BROKER=env" in out
    assert "17497" in out and "not a standard" in out  # a port never says "simulator" (review r16, 4)
    doc = json.loads(CliRunner().invoke(app, ["--json"], env=env).stdout)
    assert doc["provenance"]["IBKR_PORT"] == "env" and doc["real_money"] is False
