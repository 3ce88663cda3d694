"""Price realism of the Capital.com simulator (issue 18, review points 4 and 5).

One underlying path per epic: every resolution is a fold of the same minutes (open = first open,
close = last close, high/low = max/min), across the seeded history, the bar that contains the
simulator's start and the live bars; minutes move like a market (sd ≈ daily vol / sqrt(1440)), not
1-3 %; the snapshot's high/low is the day's range so far. Live bars are kept in bounded ring
buffers (the real API serves at most 1000 bars).
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joe.simulators.capital import CapitalSimulator
from joe.simulators.capital.bars import MAX_LIVE_BARS, LiveTape, QuoteBar, bar_start
from joe.simulators.capital.catalog import BY_EPIC
from joe.simulators.capital.exchange import Exchange
from joe.simulators.capital.history import HistoryStore
from joe.simulators.capital.path import MINUTES_PER_DAY, SeededPath, daily_vol
from joe.simulators.capital.views import market_summary
from joe.simulators.common import SimClock

PAIRS = [
    ("MINUTE", "MINUTE_5"),
    ("MINUTE", "HOUR"),
    ("MINUTE_15", "HOUR_4"),
    ("HOUR", "DAY"),
    ("DAY", "WEEK"),
]
DEPTH = {"MINUTE": 2500, "MINUTE_5": 600, "MINUTE_15": 400, "HOUR": 400, "HOUR_4": 100, "DAY": 40, "WEEK": 6}


def served(hist: HistoryStore, epic: str, resolution: str) -> list[QuoteBar]:
    return [*hist.generated(epic, resolution, DEPTH[resolution]), *hist.live(epic, resolution)]


def assert_folds(fine: list[QuoteBar], coarse: list[QuoteBar], resolution: str) -> int:
    """Every coarse bar whose span the fine list fully covers is the fold of its fine bars."""
    checked = 0
    groups: dict[datetime, list[QuoteBar]] = {}
    for f in fine:
        groups.setdefault(bar_start(f.start, resolution), []).append(f)
    for c in coarse:
        if not fine or fine[0].start > c.start:
            continue  # the fine history does not reach back to this bar's start
        inside = groups.get(c.start, [])
        if not inside:
            continue  # no trading in it at the finer resolution (cannot happen for a real bar)
        for side in ("bid", "ask"):
            got = getattr(c, side)
            parts = [getattr(f, side) for f in inside]
            want = (parts[0].o, max(p.h for p in parts), min(p.l for p in parts), parts[-1].c)
            assert (got.o, got.h, got.l, got.c) == want, (
                resolution,
                c.start,
                side,
                (got.o, got.h, got.l, got.c),
                want,
            )
        checked += 1
    return checked


def started(epic_start: datetime, steps: int, step_s: float) -> tuple[Exchange, HistoryStore, SimClock]:
    clock = SimClock.frozen(epic_start)
    ex = Exchange(3, now=clock)
    hist = HistoryStore(ex)
    for _ in range(steps):
        clock.advance(step_s)
        for epic, proc in ex.prices.items():
            proc.step()
            hist.observe(epic)
    return ex, hist, clock


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31)),
    epic=st.sampled_from(["GOLD", "EURUSD", "BTCUSD", "AAPL"]),
    steps=st.integers(0, 40),
)
def test_every_resolution_folds_the_same_minutes(start: datetime, epic: str, steps: int) -> None:
    """Seeded, joined and live bars: each coarse bar is the fold of its finer bars (both sides)."""
    _ex, hist, _ = started(start.replace(tzinfo=UTC), steps, 37.0)
    checked = 0
    for fine, coarse in PAIRS:
        checked += assert_folds(served(hist, epic, fine), served(hist, epic, coarse), coarse)
    assert checked > 0


@settings(max_examples=40, deadline=None)
@given(
    starts=st.lists(
        st.datetimes(datetime(2024, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
        min_size=2,
        max_size=2,
    ),
    epic=st.sampled_from(["GOLD", "EURUSD", "BTCUSD", "AAPL", "US100"]),
)
def test_the_seeded_history_is_the_same_market_on_any_date(starts: list[datetime], epic: str) -> None:
    """Before: each day's draws were keyed by its calendar date (and the start day's move scaled by the
    part of it that had passed), so the history was a different market on each date and hour the
    simulator started (one day with signals, the next with none: end-to-end tests passed or failed by
    the date). Now they are keyed by the trading-day offset from the newest trading day: any two starts,
    any date, weekday or hour, serve the same daily closes, and the same whole bars before the newest."""
    paths = [SeededPath(1, BY_EPIC[epic], start, 1234.5) for start in starts]
    whole = [0 if p.segment(0)[1] == MINUTES_PER_DAY else 1 for p in paths]  # skip a partial start day
    pw = list(zip(paths, whole, strict=True))
    closes = [[p.segment(k)[3] for k in range(w, w + 60)] for p, w in pw]
    assert closes[0] == closes[1]
    days = [[(b.open, b.high, b.low, b.close, b.volume) for b in map(p.day, range(w, w + 40))] for p, w in pw]
    assert days[0] == days[1]
    sd = daily_vol(BY_EPIC[epic]) / math.sqrt(MINUTES_PER_DAY)
    for p in paths:  # no whole day's move squeezed into the first minutes of a UTC day
        o, _, _, c, _ = p.minutes(0)
        assert max(abs(math.log(b / a)) for a, b in zip(o, c, strict=True)) < 8 * sd
    for p in paths:  # and the offsets count trading days: no weekend bar in a weekday market
        days = [p.segment(k)[0] for k in range(10)]
        assert BY_EPIC[epic].weekends or all(d.weekday() < 5 for d in days)


def test_the_hour_closes_on_its_last_minute_close_around_the_start() -> None:
    """The reviewer's case: the HOUR bar that holds the simulator's start and the hours before it
    close exactly where their last MINUTE closes."""
    _ex, hist, _clock = started(datetime(2026, 11, 30, 15, 39, 5, tzinfo=UTC), 90, 30.0)
    minutes = served(hist, "GOLD", "MINUTE")
    for hour in served(hist, "GOLD", "HOUR")[-4:]:
        last = [m for m in minutes if bar_start(m.start, "HOUR") == hour.start][-1]
        assert (hour.bid.c, hour.ask.c) == (last.bid.c, last.ask.c), hour.start


def test_minutes_move_like_a_market_not_percent_jumps() -> None:
    """Seeded and live minutes: no minute moves more than ~8 sd (sd = daily vol / sqrt(1440))."""
    # tick_s = 1: a step's sd scales with sqrt(tick_s), so a minute's sd does not depend on it
    clock = SimClock.frozen(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    sim = CapitalSimulator(seed=4, tick_s=1.0, clock=clock)
    for _ in range(30 * 60):  # 30 minutes of live steps, as the pump would make them
        clock.advance(1.0)
        sim.step()
    for epic in ("GOLD", "EURUSD", "BTCUSD", "US500"):
        sd = daily_vol(BY_EPIC[epic]) / math.sqrt(1440)
        seeded = sim.history.generated(epic, "MINUTE", 2500)
        live = sim.history.live(epic, "MINUTE")
        assert len(live) >= 30
        tick = BY_EPIC[epic].tick
        for kind, bars in (("seeded", seeded), ("live", live)):
            for b in bars:
                mid_o, mid_c = (b.bid.o + b.ask.o) / 2, (b.bid.c + b.ask.c) / 2
                move = abs(math.log(float(mid_c / mid_o)))
                span = float((b.bid.h - b.bid.l - tick) / b.bid.l)
                assert move < 8 * sd + float(2 * tick / b.bid.l), (epic, kind, b.start, move, sd)
                assert span < 10 * sd + float(2 * tick / b.bid.l), (epic, kind, b.start, span, sd)


def test_the_snapshot_range_is_the_days_range_so_far() -> None:
    ex, hist, clock = started(datetime(2026, 11, 30, 15, 39, 5, tzinfo=UTC), 60, 20.0)
    today = bar_start(clock(), "DAY")
    for epic in ("GOLD", "SILVER", "EURUSD"):
        s = market_summary(ex, epic, hist)
        minutes = [m for m in served(hist, epic, "MINUTE") if m.start >= today]
        assert minutes[0].start == today  # the minutes reach back to midnight
        assert Decimal(repr(s["high"])) == max(m.bid.h for m in minutes)
        assert Decimal(repr(s["low"])) == min(m.bid.l for m in minutes)
        day = hist.live(epic, "DAY")[-1]
        assert (Decimal(repr(s["high"])), Decimal(repr(s["low"]))) == (day.bid.h, day.bid.l)
        prev = hist.generated(epic, "DAY", 1)[-1]
        assert Decimal(repr(s["netChange"])) == Decimal(repr(s["bid"])) - prev.bid.c


def test_live_bars_are_bounded_ring_buffers() -> None:
    tape = LiveTape(max_bars=50)
    t0 = datetime(2026, 11, 30, tzinfo=UTC)
    for i in range(3000):  # 3000 minutes
        px = Decimal(100) + Decimal(i % 7)
        tape.observe("X", t0 + timedelta(minutes=i), px, px + 1)
    assert len(tape.bars("X", "MINUTE")) == 50
    assert tape.size() <= 50 * 8
    assert tape.bars("X", "MINUTE")[-1].start == t0 + timedelta(minutes=2999)  # the newest kept
    assert tape.bar("X", "DAY", t0) is not None  # a coarse bar outlives its evicted minutes


def test_a_long_running_simulator_keeps_at_most_1000_live_bars_per_series() -> None:
    sim = CapitalSimulator(seed=2, tick_s=0.1, clock=SimClock.frozen(datetime(2026, 11, 30, tzinfo=UTC)))
    for _ in range(1500):  # 1500 minutes, one step each
        sim.clock.advance(60)  # type: ignore[attr-defined]
        sim.step()
    tape = sim.history.tape
    assert len(tape.bars("GOLD", "MINUTE")) == MAX_LIVE_BARS == 1000
    assert tape.size() <= MAX_LIVE_BARS * 8 * len(BY_EPIC)
    out = sim.history.prices("GOLD", {"max": "1000"})["prices"]
    assert len(out) == 1000 and out[-1]["snapshotTimeUTC"] == "2026-12-01T01:00:00"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    offset_s=st.integers(0, 2 * 86400 - 1),
    epic=st.sampled_from(["AAPL", "GOLD", "EURUSD", "US500"]),
)
def test_a_weekday_market_has_no_bar_on_a_weekend_and_its_last_bar_has_volume(
    offset_s: int, epic: str
) -> None:
    """Before: a simulator running on a Saturday or Sunday (UTC) put a live daily bar with zero volume on
    that day for markets that do not trade weekends, and Joe excluded 19 of its 22 markets as
    `volume_missing` (hostile review 2026-12-03, F1). Now a weekday market's newest daily bar is Friday's,
    with its volume, however long the simulator has run into the weekend; a 24/7 market has today's."""
    start = datetime(2026, 12, 5, tzinfo=UTC) + timedelta(seconds=offset_s)  # Saturday or Sunday
    _ex, hist, _clock = started(start, 20, 61.0)
    days = served(hist, epic, "DAY")
    assert days[-1].start.weekday() == 4 and days[-1].ticks > 0, days[-1]
    assert all(b.start.weekday() < 5 for b in days)
    crypto = served(hist, "BTCUSD", "DAY")
    assert crypto[-1].start == bar_start(_clock(), "DAY") and crypto[-1].ticks > 0


def test_a_start_bar_the_live_ring_dropped_does_not_come_back_seeded_only() -> None:
    """Before: once a long-running simulator's bounded tape dropped the start's bar, `live` put a bar of
    the start's seeded minutes alone (its volume counting the whole bar) in front of bars days later
    (hostile review 2026-12-03: MINUTE_5 bars 11:50, 11:55, 12:00, 12:40 … after ~3.5 days)."""
    start = datetime(2026, 12, 1, 12, 2, 30, tzinfo=UTC)  # a Tuesday: the tape quotes GOLD from the start
    _ex, hist, _clock = started(start, 1100, 300.0)
    live = hist.live("GOLD", "MINUTE_5")
    assert live[0].start > bar_start(start, "MINUTE_5")  # the ring has dropped the start's bar
    gaps = {b.start - a.start for a, b in itertools.pairwise(live)}
    assert gaps == {timedelta(minutes=5)}, sorted(gaps)[:3]
