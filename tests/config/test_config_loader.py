"""config/execution.yaml: the checked-in file, one-line errors naming file and key, fallback to paper."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from joe.config.loader import (
    ConfigError,
    load_execution_config,
    load_execution_config_tolerant,
    parse_execution_config,
)
from joe.config.mode import TradingMode, resolve_mode
from joe.config.schema import ExecutionConfig
from joe.config.settings import load_settings
from joe.core.events import NullAudit

REPO = Path(__file__).resolve().parents[2]
CHECKED_IN = REPO / "config" / "execution.yaml"


def schema_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys |= schema_keys(ann, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def yaml_keys(doc: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for name, value in doc.items():
        if isinstance(value, dict) and value:  # an empty mapping ({}) is a key's value, not a section
            keys |= yaml_keys(value, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def test_checked_in_yaml_is_the_safe_defaults_with_every_key() -> None:
    config, problems = load_execution_config(CHECKED_IN)
    assert problems == []
    assert config == ExecutionConfig()
    assert config.live.enabled is False
    assert yaml_keys(yaml.safe_load(CHECKED_IN.read_text())) == schema_keys(ExecutionConfig)
    # every key line carries a short comment
    for line in CHECKED_IN.read_text().splitlines():
        if ":" in line and not line.lstrip().startswith("#") and not line.rstrip().endswith(":"):
            assert "#" in line or line.startswith("version"), line


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "execution.yaml"
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_execution_config(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_wrong_typed_key_names_file_key_and_expected_type(tmp_path: Path) -> None:
    path = write(tmp_path, "risk:\n  max_positions: ten\n")
    assert error_of(path) == f"{path}: risk.max_positions: expected an integer >= 0 and <= 1000, got 'ten'"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("live:\n  enabled: maybe\n", "live.enabled", "expected true or false"),
        ("paper:\n  starting_cash: -5\n", "paper.starting_cash", "expected a number > 0"),
        ("risk:\n  min_risk_grade: Z\n", "risk.min_risk_grade", "expected one of 'A', 'B', 'C', 'D'"),
        (
            "brokers:\n  ibkr:\n    port: 70000\n",
            "brokers.ibkr.port",
            "expected an integer >= 1 and <= 65535",
        ),
        ("live: 3\n", "live", "expected a mapping of enabled"),
        (
            "risk:\n  max_position: 5\n",
            "risk.max_position",
            "unknown key; did you mean risk.max_positions? (allowed here: risk_per_trade_pct",
        ),
    ],
)
def test_schema_errors(tmp_path: Path, text: str, key: str, expected: str) -> None:
    message = error_of(write(tmp_path, text))
    assert message.startswith(f"{tmp_path / 'execution.yaml'}: {key}: {expected}")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("risk:\n  max_positions: [1, 2\nlive: {}\n", "risk.max_positions"),
        ("live:\n  enabled: true\n  enabled: false\n", "live.enabled"),
        ('brokers:\n  capital:\n    demo: "true\n', "brokers.capital.demo"),
    ],
)
def test_malformed_yaml_is_one_line_naming_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    message = error_of(write(tmp_path, text))
    assert message.startswith(f"{tmp_path / 'execution.yaml'}: {key}")
    assert "malformed YAML at line" in message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "expected a mapping at top level" in error_of(write(tmp_path, "- live\n"))


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing\n", "  # only comments\n\n# here\n"])
def test_empty_file_means_defaults_and_says_so(tmp_path: Path, text: str) -> None:
    config, problems = load_execution_config(write(tmp_path, text))
    assert config == ExecutionConfig()
    assert len(problems) == 1 and "file is empty" in str(problems[0]) and not problems[0].invalid


def test_missing_file_gives_defaults_and_a_note(tmp_path: Path) -> None:
    config, problems = load_execution_config(tmp_path / "nope.yaml")
    assert config == ExecutionConfig()
    assert len(problems) == 1 and "not found" in str(problems[0]) and "nope.yaml" in str(problems[0])


@pytest.mark.parametrize("text", ["live:\n  enabled: true\nrisk: [\n", "live:\n  enabled: yes-please\n"])
def test_invalid_config_falls_back_to_paper_and_continues(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path = write(tmp_path, text)
    audit = NullAudit()
    config, problems = load_execution_config_tolerant(path, audit=audit)
    assert config == ExecutionConfig() and len(problems) == 1
    assert str(path) in str(problems[0])
    loaded = audit.records[0]
    assert loaded[0] == "config.loaded" and loaded[1]["valid"] is False and len(loaded[1]["sha256"]) == 64
    env = {"TRADING_MODE": "live", "JOE_BROKER": "ibkr", "IBKR_ACCOUNT": "DU1"}
    decision = resolve_mode(load_settings(env), config, None, audit=audit, config_problems=problems)
    assert decision.mode is TradingMode.PAPER
    assert any(str(path) in r for r in decision.reasons)
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_unreadable_path_is_tolerated(tmp_path: Path) -> None:
    config, problems = load_execution_config_tolerant(tmp_path)  # a directory, not a file
    assert config == ExecutionConfig() and problems


@given(st.one_of(st.integers(-5, 5), st.text(max_size=5), st.booleans(), st.floats(allow_nan=False)))
def test_max_positions_accepts_exactly_non_negative_integers(value: Any) -> None:
    text = yaml.safe_dump({"risk": {"max_positions": value}})
    try:
        config = parse_execution_config(text, "x.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("x.yaml: risk.max_positions: expected an integer >= 0")
        assert "\n" not in str(exc)
    else:
        # What YAML gave is that whole number (2, "2", 2.0 and "0.0" alike): nothing else is taken.
        assert config.risk.max_positions >= 0 and float(value) == config.risk.max_positions


def test_an_unfinished_sequence_names_its_key_without_an_index(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "live: {}\nrisk: [\n"))
    assert message.startswith(f"{tmp_path / 'execution.yaml'}: risk: malformed YAML at line"), message
    assert "[-1]" not in message


@pytest.mark.parametrize("code", ["XXXX", "MOON", ""])
def test_an_unknown_schedule_exchange_is_a_config_error_naming_the_key(code: str) -> None:
    """Review r1012 README (f): it passed the config gate and crashed the daemon at start."""
    from joe.config.loader import ConfigError, parse_execution_config

    with pytest.raises(ConfigError) as info:
        parse_execution_config(f"version: 1\ndaemon:\n  schedule:\n    exchange: '{code}'\n")
    assert "daemon.schedule.exchange" in str(info.value) and "unknown exchange" in str(info.value)
    for ok in ("XNYS", "NYSE", "XLON", "nasdaq"):
        parse_execution_config(f"version: 1\ndaemon:\n  schedule:\n    exchange: {ok}\n")


def test_a_duplicate_top_level_key_after_a_nested_block_is_named_as_itself() -> None:
    """Hostile review 2026-12-02: `risk:` given twice was reported as `risk.risk` (the first block's end
    is marked at the second key, so the key path still had the first block open)."""
    with pytest.raises(ConfigError) as info:
        parse_execution_config("risk:\n  max_positions: 5\nrisk:\n  max_positions: 500\n")
    assert str(info.value).startswith("config/execution.yaml: risk: malformed YAML at line 3, column 1:")
    with pytest.raises(ConfigError) as info:
        parse_execution_config(
            "daemon:\n  schedule:\n    exchange: XNYS\n  heartbeat_s: 5\n  heartbeat_s: 6\n"
        )
    assert str(info.value).startswith("config/execution.yaml: daemon.heartbeat_s: malformed YAML at line 5")
