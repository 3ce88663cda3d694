"""YAML booleans are never numbers and switches are never numbers or text (hostile review 2026-12-02).

PyYAML reads an unquoted `yes`, `no`, `on`, `off`, `true`, `false` as booleans; pydantic's lax mode took
them as 1 and 0, so `pipeline.max_signals: on` ran with one signal and `risk.max_positions: off` with none,
while `joe mode` said the config was valid. And `live.enabled: 1` (or `"yes"`) switched live on.
"""

from __future__ import annotations

import pytest

from joe.config.loader import ConfigError, parse_execution_config


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("pipeline: {max_signals: on}", "pipeline.max_signals", "expected an integer >= 0, got True"),
        (
            "risk: {max_positions: off}",
            "risk.max_positions",
            "expected an integer >= 0 and <= 1000, got False",
        ),
        ("risk: {max_positions: true}", "risk.max_positions", "got True"),
        ("daemon: {heartbeat_s: yes}", "daemon.heartbeat_s", "expected a number >= 0.5 and <= 300, got True"),
        ("brokers: {ibkr: {port: true}}", "brokers.ibkr.port", "got True"),
        ("safety: {breaker: {max_rate_limited: true}}", "safety.breaker.max_rate_limited", "got True"),
        ("live: {enabled: 1}", "live.enabled", "expected true or false, got 1"),
        ('live: {enabled: "yes"}', "live.enabled", "expected true or false, got 'yes'"),
        ("brokers: {capital: {demo: 0}}", "brokers.capital.demo", "expected true or false, got 0"),
    ],
)
def test_a_boolean_for_a_number_or_a_number_for_a_switch_is_a_config_error(
    text: str, key: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_execution_config(text)
    assert f"config/execution.yaml: {key}: " in str(info.value) and expected in str(info.value)


def test_yaml_booleans_for_switches_and_plain_numbers_still_load() -> None:
    cfg = parse_execution_config(
        "live: {enabled: yes}\nrisk: {check_market_hours: off, max_positions: 5, price_band_pct: 2.5}\n"
        "daemon: {trail_stops: false, heartbeat_s: 2}\n"
    )
    assert cfg.live.enabled is True and cfg.risk.check_market_hours is False
    assert cfg.risk.max_positions == 5 and str(cfg.risk.price_band_pct) == "2.5"
    assert cfg.daemon.trail_stops is False and cfg.daemon.heartbeat_s == 2.0


def test_a_file_for_another_schema_version_is_refused_not_half_read() -> None:
    """Hostile review 2026-12-02: `version: 2` loaded silently as this Joe's version 1."""
    with pytest.raises(ConfigError, match=r"config/execution\.yaml: version: expected one of 1, got 2"):
        parse_execution_config("version: 2\n")
    assert parse_execution_config("version: 1\n").version == 1
