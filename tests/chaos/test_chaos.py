"""Issue 13: seeded fault scenarios across both brokers; after each one every invariant of
`invariants.py` must hold against the simulator's books. A failure prints the seed, the scenario and
the one-line command that replays it alone."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from chaos.conftest import KNOWN_DEFECTS, record
from chaos.harness import run_scenario
from chaos.invariants import check
from chaos.scenario import generate


def replay_command(seed: int) -> str:
    return f".venv/bin/pytest tests/chaos/test_chaos.py -q -p no:randomly --chaos-seed {seed}"


async def _run(seed: int, data_dir: Path) -> dict[str, list[str]]:
    sc = generate(seed)
    out, world = await run_scenario(sc, data_dir)
    try:
        return check(out, world)
    finally:
        await world.stop()


@pytest.mark.timeout(300)
def test_invariants_hold_after_the_scenario(chaos_seed: int, tmp_path: Path) -> None:
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # dropped sockets are the point here
    sc = generate(chaos_seed)
    t0 = time.monotonic()
    error = ""
    try:
        violations = asyncio.run(_run(chaos_seed, tmp_path))
    except Exception as e:  # the run itself broke: that is a finding too, reported with the seed
        violations = {"run": [f"{type(e).__name__}: {e}"]}
        error = repr(e)
    failed = {k: v for k, v in violations.items() if v}
    record({
        "seed": chaos_seed, "broker": f"{sc.broker}/{sc.variant}", "faults": sc.faults,
        "ok": not failed, "known_defect": chaos_seed in KNOWN_DEFECTS,
        "violations": {k: len(v) for k, v in violations.items()},
        "seconds": round(time.monotonic() - t0, 2), "error": error[:300],
    })  # fmt: skip
    if failed:
        lines = [f"{k}: {m}" for k, v in failed.items() for m in v[:5]]
        pytest.fail(
            f"chaos seed {chaos_seed} broke {sorted(failed)}\n  {sc.describe()}\n  "
            + "\n  ".join(lines)
            + f"\nreplay: {replay_command(chaos_seed)}",
            pytrace=False,
        )
