"""The local simulators' published demo credentials: public values, never secrets.

`joe sim capital` accepts these and prints them so a new user can export them (README "The
simulators"); the Capital.com simulator's `Login` takes its defaults from here. Because they are
published, the secret redaction (`joe.audit.redaction`) does not mask them: this module is the one
allow-list both sides read. Only these exact values are exempt; any other value under a secret name
(a real API key, a password) is masked as before, even one that merely contains a demo value.
"""

from __future__ import annotations

from typing import Final

CAPITAL_SIM_API_KEY: Final = "sim-api-key"
CAPITAL_SIM_IDENTIFIER: Final = "trader@example.com"
CAPITAL_SIM_PASSWORD: Final = "sim-password"

# Exact values the redaction leaves visible (compared case-sensitively, after stripping whitespace).
PUBLIC_DEMO_VALUES: Final = frozenset({CAPITAL_SIM_API_KEY, CAPITAL_SIM_IDENTIFIER, CAPITAL_SIM_PASSWORD})


def is_public_demo_value(value: str) -> bool:
    """True when `value` is one of the simulators' published demo credentials (not a secret)."""
    return value.strip() in PUBLIC_DEMO_VALUES
