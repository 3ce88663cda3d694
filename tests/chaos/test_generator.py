"""The chaos scenario generator is a pure function of its seed and covers every broker variant and
every fault kind over a full run (issue 13 point 1)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.scenario import CAPITAL_FAULTS, COMMON_FAULTS, IBKR_FAULTS, VARIANTS, fault_counts, generate


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=10**6))
def test_a_seed_is_a_whole_replay(seed: int) -> None:
    a, b = generate(seed), generate(seed)
    assert a == b and a.describe() == b.describe()
    assert 1 <= len(a.faults) <= 3
    assert a.steps[-1].kind == "reconcile"
    kinds = {s.kind for s in a.steps}
    assert {"day", "entry"} <= kinds
    pool = set(IBKR_FAULTS if a.broker == "ibkr" else CAPITAL_FAULTS) | set(COMMON_FAULTS)
    assert set(a.faults) <= pool


def test_a_full_run_draws_every_variant_and_every_fault_kind() -> None:
    seeds = range(1000)
    assert {(generate(s).broker, generate(s).variant) for s in range(8)} == set(VARIANTS)
    counts = fault_counts(seeds)
    every = set(IBKR_FAULTS) | set(CAPITAL_FAULTS) | set(COMMON_FAULTS)
    assert set(counts) == every
    assert min(counts.values()) >= 20, counts  # each kind is met often enough to mean something
