"""`RegimeDetector.regime_at` counts the index's age in days from UTC day numbers when both dates are in
UTC: the same ages (and the same session look-ups) as the days between their `normalize()`d midnights."""

from __future__ import annotations

import math

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.analysis.regime import RegimeDetector, freshness, session_age

from .synth import spx_frame, vix_series

NS_DAY = 86_400 * 10**9
START = pd.Timestamp("2015-01-01", tz="UTC").value


@settings(max_examples=200, deadline=None)
@given(
    labelled_ns=st.integers(0, 3_000 * NS_DAY),
    later_ns=st.integers(0, 12 * NS_DAY),
    midnight=st.booleans(),
    as_text=st.booleans(),
)
def test_age_in_days_equals_the_normalized_difference(
    labelled_ns: int, later_ns: int, midnight: bool, as_text: bool
) -> None:
    det = RegimeDetector()
    hist = det.label_history(spx_frame(), vix_series())
    row = hist.iloc[-1].to_dict()
    labelled = pd.Timestamp(START + labelled_ns - (labelled_ns % NS_DAY if midnight else 0), tz="UTC")
    when = pd.Timestamp(labelled.value + later_ns, tz="UTC")
    as_of: pd.Timestamp | str = when.isoformat() if as_text else when
    got = det.regime_at(row, labelled, as_of, has_vix=True)
    days = float((when.normalize() - labelled.normalize()).days)
    same = days == 0.0 and when.normalize() == labelled.normalize()
    sessions = 0.0 if same else float(session_age(labelled, when)[0])
    assert got.evidence["spx_age_days"] == days
    assert got.evidence["spx_age_sessions"] == sessions
    assert math.isclose(
        got.evidence["freshness"],
        freshness(sessions, det.config) * freshness(float(row["vix_age_sessions"]) + sessions, det.config),
    )
    assert det.regime_at(row, labelled, None, has_vix=True).evidence["spx_age_days"] == 0.0
