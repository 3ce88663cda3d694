"""The login hints Joe prints are not secrets: every output passes through redaction, whose free-text
rule masks what follows `api_key:` / `password=`. The API-key hint read "check CAPITAL_API_KEY: *** key
shown in Capital.com Settings ..." — the word "the" masked, as if a key had been shown (hostile review
2026-12-02, a live run against the Capital.com simulator with a wrong key)."""

from __future__ import annotations

import pytest

from joe.audit.redaction import redact_text
from joe.brokers.capital.errors import KEY_HINT, LOGIN_HINT


@pytest.mark.parametrize("hint", [KEY_HINT, LOGIN_HINT])
def test_a_login_hint_reaches_the_user_whole(hint: str) -> None:
    assert redact_text(hint) == hint
    assert "***" not in redact_text(f"Run failed: CapitalAuthError: login refused on /session: {hint}")
