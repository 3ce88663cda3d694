"""Issue 14, r14b #1: a real split on a HELD paper position.

Run 1 opens positions; run 2 sees one more bar on which every held symbol does a genuine split (prices
÷ r, volume × r) in files that are not back-adjusted, as a vendor appending daily bars writes them.
Confirmed (splits.csv): the position follows the split (quantity × r, levels ÷ r, cost basis and cash
unchanged, audited, once). Unconfirmed: no stop fires on the jump; the position is held, said loudly.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.core.events import NullAudit
from joe.portfolio.corporate_actions import HeldSplit, apply_splits, held_cut, split_position
from joe.portfolio.ledger import PaperLedger, PaperPosition
from joe.runtime.bootstrap import bootstrap
from joe.runtime.run_once import run_once_sync
from joe.runtime.stages import RunOptions
from split_series import series, write_csvs


def _run(folder: Path):  # type: ignore[no-untyped-def]
    rt = bootstrap()
    try:
        return run_once_sync(rt, RunOptions(source=f"csv:{folder}"))
    finally:
        rt.close()


def _book(project: Path) -> dict[str, tuple[Decimal, Decimal, Decimal | None]]:
    from joe.store import open_store

    with open_store(f"sqlite:///{project / 'data' / 'joe.db'}", data_dir=project / "data") as s:
        return {p.symbol: (p.quantity, p.avg_price, p.stop_loss) for p in s.open_positions("paper")}


def _audit(project: Path, kind: str) -> list[dict[str, object]]:
    out = []
    for f in sorted((project / "data/audit").glob("*.jsonl")):
        for line in f.read_text().splitlines():
            ev = json.loads(line)
            if ev["event"] == kind:
                out.append(ev)
    return out


def _scenario(
    project: Path,
) -> tuple[Path, dict[str, pd.DataFrame], dict[str, tuple[Decimal, Decimal, Decimal | None]]]:
    frames = {f"S{i}": series(i) for i in range(4)}
    frames["SPX"] = series(99, price=4000)
    folder = project / "bars"
    write_csvs(folder, frames)
    _run(folder)
    held = _book(project)
    assert held, "run 1 opened no position: the scenario needs one"
    return folder, frames, held


def _next_bar_with_splits(
    frames: dict[str, pd.DataFrame], split: set[str], ratio: float
) -> dict[str, pd.DataFrame]:
    out = {}
    for sym, df in frames.items():
        last = df.iloc[[-1]].copy()
        last.index = [df.index[-1] + pd.offsets.BDay(1)]
        if sym in split:
            last.iloc[0, :4] /= ratio
            last.iloc[0, 4] *= ratio
        out[sym] = pd.concat([df, last])
    return out


@pytest.mark.parametrize("ratio", [2.0, 3.0])
def test_a_confirmed_split_on_a_held_position_is_followed_not_stopped(project: Path, ratio: float) -> None:
    folder, frames, held = _scenario(project)
    after = _next_bar_with_splits(frames, set(held), ratio)
    write_csvs(folder, after)
    day = after["S0"].index[-1].date()
    label = f"{int(ratio)}:1"
    (folder / "splits.csv").write_text("symbol,date,ratio\n" + "".join(f"{s},{day},{label}\n" for s in held))
    second = _run(folder)
    assert second.closed == 0  # no stop fired at the split price
    book = _book(project)
    r = Decimal(int(ratio))
    for sym, (qty, entry, stop) in held.items():
        q2, e2, s2 = book[sym]
        assert q2 == qty * r and abs(e2 - entry / r) < Decimal("1e-12")
        assert abs(q2 * e2 - qty * entry) < Decimal("1e-9")  # cost basis unchanged (÷3 is no finite decimal)
        if stop is not None:  # the stop followed the split (then may trail on the new bar, never back)
            assert s2 >= stop / r if qty > 0 else s2 <= stop / r
    adjusted = _audit(project, "position.split_adjusted")
    assert len(adjusted) == len(held)
    for ev in adjusted:
        p = ev["payload"]
        assert isinstance(p, dict)
        sym_stop = held[str(p["symbol"])][2]
        assert sym_stop is None or Decimal(str(p["stop_loss"]["to"])) == sym_stop / r
    # A rerun on the same (still unadjusted) files applies nothing twice.
    _run(folder)
    assert _book(project) == book and len(_audit(project, "position.split_adjusted")) == len(held)


def test_an_unconfirmed_split_on_a_held_position_holds_it_and_says_so(project: Path) -> None:
    folder, frames, held = _scenario(project)
    write_csvs(folder, _next_bar_with_splits(frames, set(held), 2.0))
    second = _run(folder)
    assert second.closed == 0 and _book(project) == held  # held at its last mark, not stopped out
    for sym in held:
        assert any(w.startswith(f"HELD {sym}:") and "NOT settled" in w for w in second.warnings), (
            second.warnings
        )


# -- the accounting, as properties ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    qty=st.integers(-5000, 5000).filter(lambda q: q != 0),
    entry=st.decimals("0.5", "2000", places=4),
    ratio=st.sampled_from(
        [Decimal(2), Decimal(3), Decimal("1.5"), Decimal("1.25"), Decimal("0.1"), Decimal("0.5")]
    ),
)
def test_property_a_split_keeps_cost_basis_and_the_stop_distance_in_units(
    qty: int, entry: Decimal, ratio: Decimal
) -> None:
    pos = PaperPosition(
        "1",
        "X",
        Decimal(qty),
        entry,
        Decimal(1),
        pd.Timestamp("2023-01-02", tz="UTC").to_pydatetime(),
        "s",
        stop_loss=entry * Decimal("0.95"),
        take_profit=entry * Decimal("1.1"),
        trailing_distance=entry / 20,
        best_price=entry,
        mark=entry,
    )
    new = split_position(pos, ratio)
    assert abs(new.quantity * new.entry_price - pos.quantity * pos.entry_price) < Decimal("1e-18")
    assert new.stop_loss is not None and pos.stop_loss is not None
    risk_before = pos.quantity * (pos.entry_price - pos.stop_loss)
    assert abs(new.quantity * (new.entry_price - new.stop_loss) - risk_before) < Decimal("1e-18")
    assert abs(new.unrealized_pnl - pos.unrealized_pnl) < Decimal("1e-18")


class _Store:
    def __init__(self) -> None:
        self.state: dict[str, object] = {}
        self.updates: list[tuple[int, dict[str, object]]] = []

    def get_state(self, key: str, default: object = None) -> object:
        return self.state.get(key, default)

    def set_state(self, key: str, value: object) -> None:
        self.state[key] = json.loads(json.dumps(value))

    def update_position(self, pid: int, **kw: object) -> None:
        self.updates.append((pid, kw))


def test_only_positions_opened_before_the_split_follow_it_once() -> None:
    ledger = PaperLedger(starting_cash=Decimal(100_000), cash=Decimal(100_000))
    t = pd.Timestamp
    before = PaperPosition(
        "1",
        "X",
        Decimal(10),
        Decimal(100),
        Decimal(0),
        t("2023-08-10", tz="UTC").to_pydatetime(),
        "a",
        stop_loss=Decimal(95),
    )
    after = PaperPosition(
        "2",
        "X",
        Decimal(20),
        Decimal(50),
        Decimal(0),
        t("2023-08-14", tz="UTC").to_pydatetime(),
        "b",
        stop_loss=Decimal(48),
    )
    other = PaperPosition(
        "3", "Y", Decimal(5), Decimal(10), Decimal(0), t("2023-08-10", tz="UTC").to_pydatetime(), "c"
    )
    for p in (before, after, other):
        ledger.positions[p.position_id] = p
    store, audit = _Store(), NullAudit()
    split = [HeldSplit("X", date(2023, 8, 14), 2.0)]
    lines = apply_splits(ledger, {}, split, store, audit)
    assert (
        len(lines) == 1
        and ledger.positions["1"].quantity == 20
        and ledger.positions["1"].stop_loss == Decimal("47.5")
    )
    assert ledger.positions["2"] == after and ledger.positions["3"] == other
    assert apply_splits(ledger, {}, split, store, audit) == [] and len(store.updates) == 1
    assert [e for e, _, _ in audit.records] == ["position.split_adjusted"]


def test_held_cut_only_for_rejected_bars_not_yet_processed() -> None:
    last = pd.Timestamp("2023-08-11", tz="UTC").to_pydatetime()
    rejected = {"A": date(2023, 8, 14), "B": date(2023, 8, 1), "C": date(2023, 8, 14)}
    assert held_cut({"A", "B"}, rejected, last) == {"A": date(2023, 8, 14)}
    assert held_cut({"B"}, rejected, None) == {"B": date(2023, 8, 1)}
