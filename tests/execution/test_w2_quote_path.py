"""The W2 workload (PEERS.md) through ReplaySource → PriceStream → PositionMonitor gives the same
stop / take-profit counts as the plain heap loop, on a deterministic slice, for any batch size."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import _w2


@pytest.fixture(scope="module")
def w2_slice() -> dict[str, np.ndarray]:
    data = _w2.generate_quotes(n=40_000, n_bars=1_000)
    return data


def test_generator_matches_the_standard_file_when_present() -> None:
    f = _w2.peers_file()
    if not f.exists():
        pytest.skip("peer_workloads.py has not written the standard file on this machine")
    import pandas as pd

    df = pd.read_parquet(f, columns=["inst", "bid", "ask"]).iloc[:5000]
    gen = _w2.generate_quotes(n=1_000_000)
    assert np.array_equal(df["bid"].to_numpy(), gen["bid"][:5000])
    assert np.array_equal(df["inst"].to_numpy(), gen["inst"][:5000])


@pytest.mark.parametrize("chunk", [1, 37, 1024, 40_000])
def test_counts_match_the_naive_reference(w2_slice: dict[str, np.ndarray], chunk: int) -> None:
    ref = _w2.naive_reference(w2_slice["inst"], w2_slice["bid"], w2_slice["ask"])
    assert ref[0] > 500 and ref[1] > 500  # the slice exercises plenty of crossings
    r = _w2.run(w2_slice, chunk=chunk)
    assert (r.stops, r.take_profits) == ref
    assert r.quotes == 40_000
    assert len(r.monitor) == 1000  # every closed position was re-opened
    assert r.monitor.triggers[_w2.TriggerKind.STOP] == ref[0]
