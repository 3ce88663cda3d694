"""No yaml value can switch a safety limit off (review r1119 finding 8).

Every number of the safety-relevant sections (risk, safety, daemon, brokers, live.rollout) has a lower and
an upper bound; inf, -inf, nan and any value outside the bounds is a `ConfigError` naming the key and the
allowed range; any value inside is accepted. `brokers.failover.instruments` must be a one-to-one map of
real names. The schema is walked, so a field added later without bounds fails here."""

from __future__ import annotations

import math
import types
import typing
from decimal import Decimal
from typing import Any

import annotated_types as at
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from joe.config.loader import ConfigError, _expected, parse_execution_config
from joe.config.schema import ExecutionConfig

SECTIONS = ("risk", "safety", "daemon", "brokers", "live.rollout")


def _numeric(annotation: Any) -> type | None:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else None
    if annotation is bool or not isinstance(annotation, type):
        return None
    return annotation if issubclass(annotation, int | float | Decimal) else None


def _fields(model: type[BaseModel], prefix: str) -> list[tuple[str, type, Any]]:
    out = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _fields(ann, f"{prefix}{name}.")
        elif (kind := _numeric(ann)) is not None:
            out.append((prefix + name, kind, info))
    return out


def _section(path: str) -> type[BaseModel]:
    model: Any = ExecutionConfig
    for part in path.split("."):
        model = model.model_fields[part].annotation
    return typing.cast(type[BaseModel], model)


FIELDS = [f for s in SECTIONS for f in _fields(_section(s), s + ".")]


def _bounds(info: Any) -> tuple[float, bool, float, bool]:
    """(low, low inclusive, high, high inclusive) of a field."""
    lo = hi = None
    lo_inc = hi_inc = True
    for m in info.metadata:
        if isinstance(m, at.Ge):
            lo = float(m.ge)  # type: ignore[arg-type]
        elif isinstance(m, at.Gt):
            lo, lo_inc = float(m.gt), False  # type: ignore[arg-type]
        elif isinstance(m, at.Le):
            hi = float(m.le)  # type: ignore[arg-type]
        elif isinstance(m, at.Lt):
            hi, hi_inc = float(m.lt), False  # type: ignore[arg-type]
    assert lo is not None and hi is not None
    return lo, lo_inc, hi, hi_inc


def _yaml(key: str, value: Any) -> str:
    doc: dict[str, Any] = {}
    node = doc
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return yaml.safe_dump({"version": 1, **doc})


def test_the_walk_sees_the_safety_fields() -> None:
    keys = {k for k, _, _ in FIELDS}
    assert {
        "risk.max_quote_age_s", "safety.protection_deadline_s", "safety.breaker.window_s",
        "daemon.stale_after_s", "safety.margin.halt_cushion", "brokers.capital.stale_quote_s",
    } <= keys  # fmt: skip


@pytest.mark.parametrize(("key", "kind", "info"), FIELDS, ids=[f[0] for f in FIELDS])
def test_every_safety_number_has_both_bounds(key: str, kind: type, info: Any) -> None:
    names = {type(m).__name__ for m in info.metadata}
    assert names & {"Ge", "Gt"} and names & {"Le", "Lt"}, f"{key} needs a lower and an upper bound"


def _outside(kind: type, info: Any) -> st.SearchStrategy[Any]:
    lo, lo_inc, hi, hi_inc = _bounds(info)
    bad: list[st.SearchStrategy[Any]] = [st.sampled_from([math.inf, -math.inf, math.nan])]
    if kind is int:
        bad += [st.integers(max_value=math.ceil(lo) - 1), st.integers(min_value=math.floor(hi) + 1)]
    else:
        bad += [
            st.floats(max_value=lo, exclude_max=lo_inc, allow_infinity=False, allow_nan=False),
            st.floats(min_value=hi, exclude_min=hi_inc, allow_infinity=False, allow_nan=False),
        ]
    return st.one_of(bad)


def _inside(kind: type, info: Any) -> st.SearchStrategy[Any]:
    lo, lo_inc, hi, hi_inc = _bounds(info)
    if kind is int:
        return st.integers(min_value=math.ceil(lo) + (0 if lo_inc else 1), max_value=math.floor(hi))
    return st.floats(min_value=lo, max_value=hi, exclude_min=not lo_inc, exclude_max=not hi_inc)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_inf_nan_or_out_of_range_is_an_error_naming_the_key_and_the_range(data: st.DataObject) -> None:
    key, kind, info = data.draw(st.sampled_from(FIELDS))
    value = data.draw(_outside(kind, info))
    with pytest.raises(ConfigError) as err:
        parse_execution_config(_yaml(key, value))
    msg = str(err.value)
    expected = _expected(tuple(key.split(".")))  # e.g. "a number >= 0.1 and <= 300"
    assert expected and " and " in expected
    assert f"{key}: expected {expected}, got " in msg, msg  # the key and the allowed range are said


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_any_value_inside_the_range_is_accepted(data: st.DataObject) -> None:
    key, kind, info = data.draw(st.sampled_from([f for f in FIELDS if not f[0].startswith("safety.margin.")]))
    value = data.draw(_inside(kind, info))
    cfg = parse_execution_config(_yaml(key, value))
    got: Any = cfg
    for part in key.split("."):
        got = getattr(got, part)
    assert float(got) == pytest.approx(float(value))


@given(
    halt=st.decimals(min_value="0.05", max_value=1, places=3),
    reduce=st.decimals(min_value="0.05", max_value=1, places=3),
    warn=st.decimals(min_value="0.05", max_value=1, places=3),
)
def test_margin_cushions_must_be_ordered(halt: Decimal, reduce: Decimal, warn: Decimal) -> None:
    text = yaml.safe_dump({"safety": {"margin": {
        "halt_cushion": str(halt), "reduce_cushion": str(reduce), "warn_cushion": str(warn)}}})  # fmt: skip
    if halt <= reduce <= warn:
        assert parse_execution_config(text).safety.margin.halt_cushion == halt
    else:
        with pytest.raises(ConfigError, match=r"safety\.margin: needs halt_cushion <= reduce_cushion"):
            parse_execution_config(text)


def test_the_reviewers_yaml_is_refused_key_by_key() -> None:
    text = """\
version: 1
risk:
  max_quote_age_s: .inf
safety:
  protection_deadline_s: .inf
  breaker:
    window_s: 1.0e-9
  margin:
    halt_cushion: 0.0001
daemon:
  stale_after_s: .inf
brokers:
  failover:
    instruments: {AAPL: "", MSFT: AAPL, "": X}
"""
    with pytest.raises(ConfigError) as err:
        parse_execution_config(text)
    keys = {p.key for p in err.value.problems}
    assert keys == {
        "risk.max_quote_age_s", "safety.protection_deadline_s", "safety.breaker.window_s",
        "safety.margin.halt_cushion", "daemon.stale_after_s", "brokers.failover.instruments",
    }  # fmt: skip
    assert "expected a number >= 0.1 and <= 300, got inf" in str(err.value)


# ------------------------------------------------------------------------------ failover instruments
NAME = st.from_regex(r"[A-Z][A-Z0-9]{0,7}", fullmatch=True)


@given(st.dictionaries(NAME, NAME, max_size=8))
def test_a_one_to_one_map_of_names_is_accepted_else_refused(m: dict[str, str]) -> None:
    text = yaml.safe_dump({"brokers": {"failover": {"instruments": m}}})
    one_to_one = len(set(m.values())) == len(m)
    crossed = any(epic in m and epic != sym for sym, epic in m.items())
    if one_to_one and not crossed:
        assert parse_execution_config(text).brokers.failover.instruments == m
    else:
        with pytest.raises(ConfigError, match=r"brokers\.failover\.instruments: "):
            parse_execution_config(text)


@pytest.mark.parametrize(
    ("m", "why"),
    [
        ({"AAPL": ""}, "is not a name"),
        ({"": "X"}, "is not a name"),
        ({" AAPL": "AAPL"}, "is not a name"),
        ({"AAPL": "AAPL\n"}, "is not a name"),
        ({"AAPL": "AAPL", "APPLE": "AAPL"}, "both map to the epic 'AAPL'"),
        ({"MSFT": "AAPL", "AAPL": "APPLE"}, "would price each other"),
    ],
)
def test_bad_instrument_maps_are_refused(m: dict[str, str], why: str) -> None:
    with pytest.raises(ConfigError, match=r"brokers\.failover\.instruments: .*" + why.replace("(", r"\(")):
        parse_execution_config(yaml.safe_dump({"brokers": {"failover": {"instruments": m}}}))
