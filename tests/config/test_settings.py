"""Settings from env and .env: case-insensitive, tolerant (bad values dropped with a reason), no leaks."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.config.settings import Settings, env_names, load_settings


def test_defaults() -> None:
    s = load_settings({})
    assert s.trading_mode == "" and s.broker == "sim" and s.problems == ()
    assert s.config_path == Path("config/execution.yaml")
    assert s.database_url == "sqlite:///data/joe.db"
    assert s.capital_demo is None and s.ibkr_port is None
    assert load_settings({"JOE_DATA_DIR": "/x", "JOE_DB_URL": ""}).database_url == "sqlite:////x/joe.db"


def test_values_and_case_insensitive_names() -> None:
    s = load_settings(
        {
            "joe_broker": " Capital ",
            "Ibkr_Port": "4002",
            "CAPITAL_DEMO": "false",
            "JOE_LOG_LEVEL": "debug",
            "JOE_LOG_JSON": "1",
            "capital_api_key": "k",
        }
    )
    assert s.broker == "capital" and s.ibkr_port == 4002 and s.capital_demo is False
    assert s.log_level == "DEBUG" and s.log_json is True
    assert s.capital_api_key is not None and s.capital_api_key.get_secret_value() == "k"
    assert s.problems == ()


def test_empty_values_mean_unset() -> None:
    s = load_settings({"IBKR_PORT": "", "CAPITAL_DEMO": " ", "CAPITAL_API_KEY": "", "TRADING_MODE": " "})
    assert s.ibkr_port is None and s.capital_demo is None and s.capital_api_key is None
    assert s.trading_mode == " " and s.problems == ()  # the raw mode is kept for the resolver to explain


@pytest.mark.parametrize(
    ("name", "value", "field", "fallback"),
    [
        ("JOE_BROKER", "etrade", "broker", "sim"),
        ("IBKR_PORT", "seventy", "ibkr_port", None),
        ("IBKR_PORT", "0", "ibkr_port", None),
        ("IBKR_CLIENT_ID", "-3", "ibkr_client_id", None),
        ("CAPITAL_DEMO", "perhaps", "capital_demo", True),
        ("JOE_LOG_LEVEL", "LOUD", "log_level", "INFO"),
        ("JOE_LOG_JSON", "sometimes", "log_json", False),
    ],
)
def test_bad_values_fall_back_with_a_reason(name: str, value: str, field: str, fallback: object) -> None:
    s = load_settings({name: value, "IBKR_ACCOUNT": "DU1"})
    assert getattr(s, field) == fallback
    assert s.ibkr_account == "DU1"  # the good values survive
    assert len(s.problems) == 1 and s.problems[0].startswith(f"{name}:") and repr(value) in s.problems[0]


def test_conflicting_case_duplicates_are_a_problem() -> None:
    s = load_settings({"TRADING_MODE": "live", "trading_mode": "paper"})
    assert s.trading_mode == "live" and "TRADING_MODE" in s.problems[0]
    assert load_settings({"TRADING_MODE": "live", "trading_mode": "live"}).problems == ()


def test_dotenv_fills_in_and_env_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TRADING_MODE=shadow\nJOE_BROKER=ibkr\nIBKR_ACCOUNT=DU5\n")
    s = load_settings({"JOE_BROKER": "capital"}, env_file)
    assert (s.trading_mode, s.broker, s.ibkr_account) == ("shadow", "capital", "DU5")
    assert load_settings({}, tmp_path / "missing.env").broker == "sim"


def test_process_env_and_cwd_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in env_names().values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("JOE_BROKER=ibkr\nIBKR_PORT=nope\n")
    monkeypatch.setenv("TRADING_MODE", "live")
    for s in (load_settings(), Settings()):  # both entry points are tolerant
        assert s.trading_mode == "live" and s.broker == "ibkr" and s.ibkr_port is None
        assert any(p.startswith("IBKR_PORT:") for p in s.problems)


def test_secret_values_never_appear_in_problems_or_repr() -> None:
    s = load_settings(
        {"CAPITAL_PASSWORD": "hunter2-secret", "CAPITAL_API_KEY": "key-secret", "IBKR_PORT": "x"}
    )
    assert "hunter2-secret" not in repr(s) and "key-secret" not in repr(s) + str(s.problems)


@given(st.dictionaries(st.sampled_from(sorted(env_names().values())), st.text(max_size=12), max_size=8))
def test_never_raises(environ: dict[str, str]) -> None:
    s = load_settings(environ)
    assert s.broker in ("sim", "capital", "ibkr")
    assert s.ibkr_port is None or 1 <= s.ibkr_port <= 65535
    for name, value in environ.items():
        field = {v: k for k, v in env_names().items()}[name]
        if field in ("trading_mode",) or not value.strip():
            continue
        dropped = any(p.startswith(f"{name}:") for p in s.problems)
        assert dropped or getattr(s, field) is not None


def test_secret_value_unwraps_and_treats_blank_as_unset() -> None:
    from pydantic import SecretStr

    from joe.config.settings import secret_value

    assert secret_value(SecretStr("  k3y  ")) == "k3y"
    assert secret_value(SecretStr("   ")) is None
    assert secret_value(None) is None
    assert secret_value("plain") == "plain"
    assert "k3y" not in repr(SecretStr("k3y"))
