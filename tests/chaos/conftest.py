"""The chaos suite's seeds and its run summary (issue 13).

Seeds: `--chaos-seeds A:B` runs seeds A..B-1 (`make chaos` runs 0:1000), one pytest item per seed;
`--chaos-seed N` replays one. Without either, the fixed smoke subset `SMOKE` runs as one test, its
scenarios concurrently (`test_chaos.test_the_smoke_subset`, part of `make e2e`). Each scenario's result
is appended to `test-artifacts/chaos/results.jsonl` (`JOE_CHAOS_ARTIFACTS`: another folder than
`test-artifacts`); at the end of the session the controller writes `test-artifacts/chaos-summary.json`
and `.md` (`summary.py`); the smoke subset writes `chaos-smoke-summary.json` and `.md`, a replay
(`--chaos-seed N`) `chaos-replay-summary.json` and `.md` (the full run's summary stays).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from chaos.summary import summarize, write

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("JOE_CHAOS_ARTIFACTS") or ROOT / "test-artifacts")
RESULTS = ARTIFACTS / "chaos" / "results.jsonl"
SUMMARY = ARTIFACTS / "chaos-summary"  # .json and .md
SMOKE_SUMMARY = ARTIFACTS / "chaos-smoke-summary"


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("chaos")
    g.addoption("--chaos-seeds", default=None, help="run the chaos scenarios of seeds A:B (B excluded)")
    g.addoption("--chaos-seed", type=int, default=None, help="replay one chaos scenario by its seed")


def seeds(config: pytest.Config) -> list[int]:
    """The seeds asked for on the command line (none: the smoke subset runs instead)."""
    one = config.getoption("--chaos-seed", None)
    if one is not None:
        return [int(one)]
    span = config.getoption("--chaos-seeds", None)
    if span:
        a, _, b = str(span).partition(":")
        return list(range(int(a), int(b)))
    return []


# Seeds that meet a defect of code others own (joe/execution, joe/safety), named here until fixed.
# Not strict: a chaos scenario's path depends on timing, so a seed may miss its defect on a given run;
# each deterministic case has a strict xfail in test_found.py.
# None open: 43 (a restart on a full audit disk resent the killed process's entry) since truth7
# (test_found.test_a_restart_on_a_full_audit_disk_sends_no_entry and
# test_an_entry_whose_write_ahead_record_fails_is_not_sent); 75 (a crash before a slow exit's outcome
# was recorded: after the restart the broker's close was booked as an outside change on the entry,
# the exit went UNKNOWN then LOST) since truth8
# (tests/capital/test_truth_outside.test_restart_books_the_in_doubt_exits_close_as_its_fill_not_outside).
# Seed 477's Joe side (a target modified down could fill in full before the modify landed) is fixed:
# test_found.test_a_target_larger_than_a_corrected_entry_never_reverses_the_position. What was left
# (2026-12-02, truth477) was the invariant's, not Joe's: under heavy load the price could run through
# the over-sized target ~50 ms of wall time after TWS corrected the entry 3 -> 1, before Joe's cancel
# (sent 0.1-0.3 s after the correction) reached the simulated TWS. The entry's rest (a market order
# the correction put back to work) then filled 2 in the same matching pass as the target's 3: the
# target sold 3 against a position of 3, flat. The second correct_exec cut that refill 2 -> 1 AFTER
# the target filled, leaving the account at -1: TWS's act, which no client can prevent. `no_reversal`
# judged the end state and called it a reversal; it now judges each exit in the broker's timeline
# (`chaos.timeline`, tests in test_timeline.py) and `correction_short_known` requires such a short
# to be known to Joe. Seed 477 is no longer a known defect.
KNOWN_DEFECTS: dict[int, str] = {}
# Fault kinds that meet a defect of others' code in any scenario that draws them (before the action
# the fault precedes); each strict and deterministic in test_found.py. None open: audit_full (an exit
# not sent while the audit disk was full, seed 169's entry never audited) is fixed by the audit log's
# space reserve and the entry gate (test_found.test_an_exit_is_sent_while_the_audit_disk_is_full).
KNOWN_FAULT_DEFECTS: dict[str, str] = {}


def known_defect(seed: int) -> str | None:
    """Why the scenario of `seed` is expected to meet a known defect (None: it is not)."""
    if seed in KNOWN_DEFECTS:
        return KNOWN_DEFECTS[seed]
    from chaos.scenario import generate

    kinds = [k for k in generate(seed).faults if k in KNOWN_FAULT_DEFECTS]
    return KNOWN_FAULT_DEFECTS[kinds[0]] if kinds else None


# Seeds of the defects under repair in joe/execution: left out of the smoke subset, not of `make chaos`.
# None open: 6 7 16 20 62 83 95 98 101 (and 129 146 220 253 477) pass since truth6 (each replayed once,
# 16 95 98 101 220 twice); 250 and 315 since the owner-close miscount in protected_or_halted was mended.
# 220 met a second race in truth7's 112:400 run (a replacement stop on top of a stop resize in flight,
# test_found.test_no_replacement_stop_on_top_of_a_stop_resize_in_flight); fixed, replayed twice.
OPEN_DEFECT_SEEDS: frozenset[int] = frozenset()
# The fixed subset in `make test`: the first 100 seeds less those above (every variant; seeds 0-111).
SMOKE: tuple[int, ...] = tuple(
    s for s in range(112) if s not in OPEN_DEFECT_SEEDS and s not in KNOWN_DEFECTS
)[:100]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "chaos_seed" in metafunc.fixturenames:
        params = [
            pytest.param(s, marks=pytest.mark.xfail(reason=why, strict=False))
            if (why := known_defect(s)) is not None
            else s
            for s in seeds(metafunc.config)
        ]
        metafunc.parametrize("chaos_seed", params)


def _controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    """A replay (`--chaos-seed N`) keeps its rows and summary apart (`chaos/replay-results.jsonl`,
    `chaos-replay-summary`): replaying a failed seed must not overwrite the full run's summary."""
    global RESULTS, SUMMARY
    if config.getoption("--chaos-seed", None) is not None:
        RESULTS = ARTIFACTS / "chaos" / "replay-results.jsonl"
        SUMMARY = ARTIFACTS / "chaos-replay-summary"


def pytest_sessionstart(session: pytest.Session) -> None:
    if _controller(session.config) and _chaos_selected(session.config):
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.unlink(missing_ok=True)
        session.config._chaos_t0 = time.monotonic()  # type: ignore[attr-defined]


def _chaos_selected(config: pytest.Config) -> bool:
    """A `make chaos` style run (seeds on the command line): its results file starts empty."""
    return bool(seeds(config))


def record(result: dict[str, Any]) -> None:
    """Append one scenario's result (one short line: O_APPEND keeps parallel workers' lines whole)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as fh:
        fh.write(json.dumps(result) + "\n")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    t0 = getattr(session.config, "_chaos_t0", None)
    if not _controller(session.config) or t0 is None or not RESULTS.exists():
        return
    rows = [json.loads(x) for x in RESULTS.read_text().splitlines() if x.strip()]
    workers = getattr(session.config.option, "numprocesses", None)
    summary = summarize(rows, time.monotonic() - t0, workers)
    write(summary, SUMMARY)
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(
            f"chaos: {summary['scenarios']} scenarios, {len(summary['failed_seeds'])} failed, "
            f"{summary['wall_seconds']} s; summary in {SUMMARY.with_suffix('.json')} (and .md)"
        )
