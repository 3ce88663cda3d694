"""The chaos scenario generator is a pure function of its seed and covers every broker variant and
every fault kind over a full run (issue 13 point 1)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.scenario import (
    CAPITAL_FAULTS,
    COMMON_FAULTS,
    EXTRA_FAULTS,
    IBKR_FAULTS,
    VARIANTS,
    fault_counts,
    generate,
)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=10**6))
def test_a_seed_is_a_whole_replay(seed: int) -> None:
    a, b = generate(seed), generate(seed)
    assert a == b and a.describe() == b.describe()
    assert 1 <= len(a.faults) <= 4
    assert a.steps[-1].kind == "reconcile"
    kinds = {s.kind for s in a.steps}
    assert {"day", "entry"} <= kinds
    pool = set(IBKR_FAULTS if a.broker == "ibkr" else CAPITAL_FAULTS) | set(COMMON_FAULTS)
    pool |= set(EXTRA_FAULTS[a.broker])
    assert set(a.faults) <= pool


def test_a_full_run_draws_every_variant_and_every_fault_kind() -> None:
    seeds = range(1000)
    assert {(generate(s).broker, generate(s).variant) for s in range(8)} == set(VARIANTS)
    counts = fault_counts(seeds)
    every = set(IBKR_FAULTS) | set(CAPITAL_FAULTS) | set(COMMON_FAULTS)
    every |= {f for x in EXTRA_FAULTS.values() for f in x}
    assert set(counts) == every
    assert min(counts.values()) >= 20, counts  # each kind is met often enough to mean something


def test_the_extra_fault_kinds_leave_the_older_scenario_as_it_was() -> None:
    """The seed → scenario mapping the regression seeds rely on: a scenario with an extra fault kind
    (audit disk full, disconnect after ack) is the scenario without it plus that one step."""
    extra = {f for x in EXTRA_FAULTS.values() for f in x}
    seen = 0
    for seed in range(200):
        sc = generate(seed)
        steps = [s for s in sc.steps if not (s.kind == "fault" and s.args["name"] in extra)]
        if len(steps) != len(sc.steps):
            seen += 1
            assert len(sc.steps) - len(steps) == 1
        # the main stream drew only from the older pools
        assert not set(f for f in (s.args.get("name") for s in steps if s.kind == "fault")) & extra
    assert 20 <= seen <= 65  # about EXTRA_RATE of the scenarios
