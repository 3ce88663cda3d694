"""The simulators' published demo credentials are not secrets; every other value stays masked.

One allow-list (`joe.core.demo_credentials`) is read by the Capital.com simulator (its `Login`
defaults, the banner of `joe sim capital`) and by the redaction, so the banner can print what to
export while a real key or password under the same names is still masked everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.audit import redaction
from joe.audit.redaction import MASK, redact, redact_text, register_secret, register_secrets_from_env
from joe.core.demo_credentials import PUBLIC_DEMO_VALUES, is_public_demo_value
from joe.simulators.capital.gate import Login


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    redaction.clear_secrets()
    yield
    redaction.clear_secrets()


def test_the_simulator_accepts_exactly_the_allow_listed_values() -> None:
    login = Login()
    assert {login.api_key, login.identifier, login.password} == PUBLIC_DEMO_VALUES


@pytest.mark.parametrize("name", ["CAPITAL_API_KEY", "CAPITAL_PASSWORD", "CAPITAL_IDENTIFIER", "MY_TOKEN"])
@pytest.mark.parametrize("value", sorted(PUBLIC_DEMO_VALUES))
def test_demo_values_stay_visible_in_every_form(name: str, value: str) -> None:
    assert register_secrets_from_env({name: value}) == []
    register_secret(value)
    assert redaction.registered_secret_count() == 0
    for text in (f"export {name}={value}", f'{{"{name.lower()}": "{value}"}}', f"password={value}"):
        assert redact_text(text) == text
    # A structured field named like a secret is masked whatever it holds (audit records of a login).
    assert redact({"password": value, "X-CAP-API-KEY": value}) == {"password": MASK, "X-CAP-API-KEY": MASK}


# Real secrets, including ones that merely contain, extend or re-case a demo value.
REAL = ["capKEY-Secret-7f3a9c1e55", "sim-api-key-2", "SIM-PASSWORD", "xsim-password", "my-own-pass-456"]


@pytest.mark.parametrize("secret", REAL)
def test_real_values_under_the_same_names_stay_masked(secret: str) -> None:
    assert not is_public_demo_value(secret)
    assert register_secrets_from_env({"CAPITAL_API_KEY": secret}) == ["CAPITAL_API_KEY"]
    for text in (f"export CAPITAL_API_KEY={secret}", f"key {secret} leaked", f"password={secret}"):
        assert secret not in redact_text(text)
    assert redact({"password": secret, "api_key": secret}) == {"password": MASK, "api_key": MASK}


_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@", min_size=3)


@given(_TOKEN.filter(lambda v: v not in PUBLIC_DEMO_VALUES))
def test_any_other_value_after_a_secret_name_is_masked(value: str) -> None:
    assert redact_text(f"password={value}") == f"password={MASK}"
    assert redact_text(f"export CAPITAL_API_KEY={value}") == f"export CAPITAL_API_KEY={MASK}"
    assert redact({"password": value}) == {"password": MASK}
