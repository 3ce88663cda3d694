"""Each live gate on its own, shadow, contradictions, confirmation, override audit, loud fallback."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import pytest

from joe.config.graduation import DemoRecord
from joe.config.loader import ConfigProblem
from joe.config.mode import TrackRecord, TradingMode, mask_account, resolve_mode
from joe.config.schema import ExecutionConfig
from joe.config.settings import load_settings
from joe.core.events import NullAudit

GOOD = TrackRecord(paper_days=45, closed_paper_trades=80)
# A clean demo-live record (issue 19): 10 days, no incident, nothing UNKNOWN.
CLEAN = DemoRecord("any", tuple(date(2026, 11, 1) + timedelta(days=i) for i in range(10)))
REASON = "approved by the risk committee, ticket RISK-42"

IBKR_REAL = {
    "TRADING_MODE": "live",
    "JOE_BROKER": "ibkr",
    "IBKR_PORT": "7496",
    "IBKR_ACCOUNT": "U1234567",
    "JOE_LIVE_CONFIRM": "U1234567",
}
CAPITAL_REAL = {
    "TRADING_MODE": "live",
    "JOE_BROKER": "capital",
    "CAPITAL_API_KEY": "k-secret-1",
    "CAPITAL_IDENTIFIER": "me@example.com",
    "CAPITAL_PASSWORD": "p-secret-2",
    "CAPITAL_DEMO": "false",
    "CAPITAL_ACCOUNT_ID": "ACC-77",
    "JOE_LIVE_CONFIRM": "ACC-77",
}


def cfg(enabled: bool = True, override: bool = False, reason: str = "", **brokers: Any) -> ExecutionConfig:
    return ExecutionConfig.model_validate(
        {
            "live": {"enabled": enabled, "track_record_override": {"enabled": override, "reason": reason}},
            "brokers": brokers,
        }
    )


def resolve(
    env: dict[str, str], config: ExecutionConfig | None = None, record: TrackRecord | None = GOOD, **kw: Any
) -> Any:
    audit = kw.pop("audit", NullAudit())
    kw.setdefault("demo_record", CLEAN)
    decision = resolve_mode(load_settings(env), config or cfg(), record, audit=audit, **kw)
    return decision, audit


def failed(decision: Any) -> list[str]:
    return [g.name for g in decision.gates if not g.passed]


@pytest.mark.parametrize("env", [IBKR_REAL, CAPITAL_REAL], ids=["ibkr", "capital"])
def test_all_gates_pass_real_money(env: dict[str, str]) -> None:
    decision, audit = resolve(env)
    assert decision.mode is TradingMode.LIVE and decision.real_money
    assert failed(decision) == [] and decision.reasons == []
    assert [e for e, _, _ in audit.records] == ["mode.resolved"]


@pytest.mark.parametrize(
    ("change", "config", "record", "gate"),
    [
        ({"TRADING_MODE": "paper"}, None, GOOD, "trading_mode"),
        ({"IBKR_CLIENT_ID": "minus one"}, None, GOOD, "settings"),
        ({}, cfg(enabled=False), GOOD, "live_enabled"),
        ({"JOE_BROKER": "sim"}, None, GOOD, "broker"),
        ({"IBKR_ACCOUNT": ""}, None, GOOD, "credentials"),
        ({"IBKR_PORT": "7498"}, None, GOOD, "endpoint"),
        ({"JOE_LIVE_CONFIRM": "U7654321"}, None, GOOD, "confirmation"),
        ({"JOE_LIVE_CONFIRM": ""}, None, GOOD, "confirmation"),
        ({}, None, TrackRecord(29, 80), "track_record"),
        ({}, None, TrackRecord(45, 49), "track_record"),
        ({}, None, None, "track_record"),
        ({}, cfg(override=True, reason="because"), TrackRecord(1, 1), "track_record"),
    ],
)
def test_each_gate_alone_blocks_live(change: dict[str, str], config: Any, record: Any, gate: str) -> None:
    decision, _ = resolve({**IBKR_REAL, **change}, config, record)
    assert decision.mode is TradingMode.PAPER
    assert gate in failed(decision)
    # sim also fails credentials/endpoint (that is the point of the contradiction); a missing
    # account cannot be confirmed either.
    also = {"broker": {"credentials", "endpoint"}, "credentials": {"confirmation"}}.get(gate, set())
    assert set(failed(decision)) == {gate} | also


def test_config_problem_blocks_live() -> None:
    problem = ConfigProblem(
        "config/execution.yaml", "risk.max_positions", "expected an integer >= 0, got 'ten'"
    )
    decision, _ = resolve(IBKR_REAL, config_problems=[problem])
    assert decision.mode is TradingMode.PAPER and failed(decision) == ["config"]
    assert any("risk.max_positions" in r for r in decision.reasons)


@pytest.mark.parametrize("port", ["7497", "4002"])
def test_ibkr_paper_account_needs_no_track_record_or_confirmation(port: str) -> None:
    env = {**IBKR_REAL, "IBKR_PORT": port, "IBKR_ACCOUNT": "DU1234567", "JOE_LIVE_CONFIRM": ""}
    decision, _ = resolve(env, record=None)
    assert decision.mode is TradingMode.LIVE and not decision.real_money


def test_capital_demo_default_is_demo() -> None:
    env = {k: v for k, v in CAPITAL_REAL.items() if k not in ("CAPITAL_DEMO", "JOE_LIVE_CONFIRM")}
    decision, _ = resolve(env, record=None)
    assert decision.mode is TradingMode.LIVE and not decision.real_money


def test_capital_env_demo_wins_over_yaml() -> None:
    env = {**CAPITAL_REAL, "CAPITAL_DEMO": "true", "JOE_LIVE_CONFIRM": ""}
    decision, _ = resolve(env, cfg(capital={"demo": False}), record=None)
    assert decision.mode is TradingMode.LIVE and not decision.real_money
    # and the yaml decides when the env is silent: real money, so confirmation is needed
    env.pop("CAPITAL_DEMO")
    decision, _ = resolve(env, cfg(capital={"demo": False}), record=None)
    assert decision.mode is TradingMode.PAPER and decision.real_money


@pytest.mark.parametrize(
    ("env", "gate"),
    [
        ({**CAPITAL_REAL, "CAPITAL_DEMO": "maybe"}, "settings"),
        (
            {
                **CAPITAL_REAL,
                "CAPITAL_DEMO": "true",
                "CAPITAL_API_URL": "https://api-capital.backend-capital.com",
            },
            "endpoint",
        ),
        (
            {**CAPITAL_REAL, "CAPITAL_API_URL": "https://demo-api-capital.backend-capital.com/api/v1"},
            "endpoint",
        ),
        ({**IBKR_REAL, "trading_mode": "paper"}, "settings"),
        ({**IBKR_REAL, "JOE_BROKER": "ibkr-live"}, "settings"),
    ],
)
def test_contradictions_resolve_to_paper(env: dict[str, str], gate: str) -> None:
    decision, _ = resolve(env)
    assert decision.mode is TradingMode.PAPER and gate in failed(decision)


def test_unparseable_capital_demo_is_treated_as_demo() -> None:
    settings = load_settings({"CAPITAL_DEMO": "nope"})
    assert settings.capital_demo is True
    decision = resolve_mode(settings, cfg(capital={"demo": False}), None)
    assert decision.real_money is False  # never real money on a value we could not read


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        (None, "paper"),
        ("", "paper"),
        ("   ", "paper"),
        ("PAPER", "paper"),
        (" paper\n", "paper"),
        ("livee", "paper"),
        ("real", "paper"),
        (" LIVE ", "live"),
        ("Shadow", "shadow"),
    ],
)
def test_trading_mode_normalisation(raw: str | None, mode: str) -> None:
    env = {**IBKR_REAL}
    env.pop("TRADING_MODE")
    if raw is not None:
        env["TRADING_MODE"] = raw
    decision, _ = resolve(env)
    assert decision.mode.value == mode
    if mode == "paper" and (raw or "").strip().lower() != "paper":
        assert decision.reasons


def test_shadow_needs_broker_credentials_only() -> None:
    base = {"TRADING_MODE": "shadow", "JOE_BROKER": "ibkr", "IBKR_ACCOUNT": "DU1"}
    assert resolve(base, cfg(enabled=False), None)[0].mode is TradingMode.SHADOW
    assert resolve({**base, "IBKR_ACCOUNT": ""})[0].mode is TradingMode.PAPER
    assert resolve({**base, "JOE_BROKER": "sim"})[0].mode is TradingMode.PAPER


def test_interactive_confirmation() -> None:
    env = {**IBKR_REAL, "JOE_LIVE_CONFIRM": ""}
    prompts: list[str] = []

    def typed(answer: str) -> Any:
        def ask(prompt: str) -> str:
            prompts.append(prompt)
            return answer

        return ask

    assert resolve(env, confirm=typed(" U1234567 "))[0].mode is TradingMode.LIVE
    assert "U1234567" not in prompts[-1] and mask_account("U1234567") in prompts[-1]
    assert resolve(env, confirm=typed("U1234568"))[0].mode is TradingMode.PAPER

    def aborted(prompt: str) -> str:
        raise KeyboardInterrupt

    assert resolve(env, confirm=aborted)[0].mode is TradingMode.PAPER
    # A request that is doomed anyway never bothers the human.
    prompts.clear()
    assert resolve(env, cfg(enabled=False), confirm=typed("U1234567"))[0].mode is TradingMode.PAPER
    assert prompts == []
    # An unattended mismatch is not rescued by a prompt.
    assert (
        resolve({**env, "JOE_LIVE_CONFIRM": "other"}, confirm=typed("U1234567"))[0].mode is TradingMode.PAPER
    )


def test_track_record_override_is_audited() -> None:
    decision, audit = resolve(IBKR_REAL, cfg(override=True, reason=REASON), TrackRecord(0, 0))
    assert decision.mode is TradingMode.LIVE and decision.override_used
    events = {e: p for e, p, _ in audit.records}
    assert events["mode.override"]["reason"] == REASON
    # not used when the record is good enough on its own
    decision, audit = resolve(IBKR_REAL, cfg(override=True, reason=REASON), GOOD)
    assert not decision.override_used and "mode.override" not in [e for e, _, _ in audit.records]


def test_fallback_is_loud(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    decision, audit = resolve({**IBKR_REAL, "JOE_BROKER": "sim"})
    assert decision.mode is TradingMode.PAPER
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "mode.fallback" in r.getMessage()
    ]
    assert len(warnings) == 1
    events = [e for e, _, _ in audit.records]
    assert events == ["mode.resolved", "mode.fallback"]
    payload = audit.records[-1][1]
    assert payload["mode"] == "paper" and payload["requested"] == "live"
    assert {g["name"] for g in payload["gates"]} >= {"broker", "credentials", "endpoint"}


def test_unset_mode_is_quiet_but_audited(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    decision, audit = resolve({})
    assert decision.mode is TradingMode.PAPER and not decision.fell_back
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [e for e, _, _ in audit.records] == ["mode.resolved"]
    assert "unset" in audit.records[0][1]["reasons"][0]


class BrokenAudit:
    def record(self, event_type: str, payload: dict[str, Any] | None = None, **ids: str | None) -> None:
        raise OSError("disk full")


def test_unauditable_live_falls_back_to_paper() -> None:
    decision, _ = resolve(IBKR_REAL, audit=BrokenAudit())
    assert decision.mode is TradingMode.PAPER
    assert any("audit failed" in r for r in decision.reasons)


def test_never_raises_on_broken_inputs() -> None:
    class Weird:
        trading_mode = "live"

        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(f"boom {name}")

    decision = resolve_mode(Weird(), ExecutionConfig(), GOOD)  # type: ignore[arg-type]
    assert decision.mode is TradingMode.PAPER and decision.reasons
    bad_record = TrackRecord("many", None)  # type: ignore[arg-type]
    assert resolve(IBKR_REAL, record=bad_record)[0].mode is TradingMode.PAPER


def test_audit_and_reasons_hold_no_secrets() -> None:
    decision, audit = resolve({**CAPITAL_REAL, "CAPITAL_DEMO": "maybe"})
    text = repr(decision.to_dict()) + repr(audit.records)
    for secret in ("k-secret-1", "p-secret-2"):
        assert secret not in text


@pytest.mark.parametrize("spelled", ["paper", ""])
def test_a_contradictory_trading_mode_is_paper_loudly_whatever_spelling_won(
    spelled: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Hostile review 2026-12-02: `TRADING_MODE=paper` (or empty) beside `trading_mode=live` resolved to paper
    quietly — INFO, `reasons=[]`, no `mode.fallback`, no alert — although the other spelling asked for live
    (DESIGN principle 2: contradictory configuration resolves to paper, loudly)."""
    caplog.set_level(logging.INFO)
    decision, audit = resolve({**IBKR_REAL, "TRADING_MODE": spelled, "trading_mode": "live"})
    assert decision.mode is TradingMode.PAPER and decision.fell_back and "settings" in failed(decision)
    assert decision.reasons == [
        "TRADING_MODE is set more than once with different letter case and values: contradictory, so paper"
    ]
    assert [r for r in caplog.records if r.levelno == logging.WARNING and "mode.fallback" in r.getMessage()]
    assert [e for e, _, _ in audit.records] == ["mode.resolved", "mode.fallback"]
