"""Property tests: response models turn any JSON into a model or a typed ProtocolError; the
simulator's bracket validation never accepts a stop or target on the wrong side or too close."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from joe.brokers.capital import models as m
from joe.brokers.capital.errors import ProtocolError
from joe.simulators.capital.catalog import BY_EPIC
from joe.simulators.capital.rules import ApiError, parse_bracket

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=5),
    max_leaves=20,
)
MODELS: list[type[BaseModel]] = [
    m.Confirm,
    m.PositionsResponse,
    m.PricesResponse,
    m.AccountsResponse,
    m.LoginResponse,
    m.MarketDetails,
    m.ActivityResponse,
    m.DealReference,
]


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=60, deadline=None)
@given(data=json_values)
def test_models_accept_or_raise_protocol_error(model: type[BaseModel], data: Any) -> None:
    try:
        out = m.parse(model, data)
    except ProtocolError as exc:
        assert "unexpected shape" in str(exc)
    else:
        assert isinstance(out, model)


@settings(max_examples=200, deadline=None)
@given(
    direction=st.sampled_from(["BUY", "SELL"]),
    stop_off=st.one_of(st.none(), st.floats(min_value=-500, max_value=500)),
    profit_off=st.one_of(st.none(), st.floats(min_value=-500, max_value=500)),
)
def test_accepted_brackets_sit_on_the_protective_side(
    direction: str, stop_off: float | None, profit_off: float | None
) -> None:
    spec = BY_EPIC["GOLD"]
    ref = Decimal("2000.00")
    body: dict[str, Any] = {}
    if stop_off is not None:
        body["stopLevel"] = float(ref) + stop_off
    if profit_off is not None:
        body["profitLevel"] = float(ref) + profit_off
    try:
        b = parse_bracket(spec, body, direction=direction, ref=ref, size=Decimal(1), hedging=False)
    except ApiError as exc:
        # off the 0.01 grid → error.invalid.stoplevel / profitlevel; on it, the bounds decide
        assert exc.status == 400 and exc.code.startswith(
            (
                "error.invalid.stoploss",
                "error.invalid.takeprofit",
                "error.invalid.stoplevel",
                "error.invalid.profitlevel",
            )
        )
        if exc.code in ("error.invalid.stoplevel", "error.invalid.profitlevel"):
            key = "stopLevel" if exc.code.endswith("stoplevel") else "profitLevel"
            assert Decimal(repr(body[key])) % spec.tick != 0
        return
    min_d = ref * spec.min_stop_pct / 100
    sign = 1 if direction == "BUY" else -1
    if b.stop_level is not None:
        assert sign * (ref - b.stop_level) >= min_d
    if b.profit_level is not None:
        assert sign * (b.profit_level - ref) >= min_d
