"""A seeded synthetic universe whose returns are driven by real index returns.

Every synthetic instrument is clearly labelled: its symbol starts with ``SYN-``, its name with
``Synthetic`` and `Instrument.synthetic` is True. Nothing here pretends to be a real market.

Model, per instrument *i* and day *t* (log returns)::

    r[t, i] = beta[i] * index[t] + factor[t, group(i)] + drift[i] + eps[t, i]
    eps[t, i] = sigma[t, i] * z[t, i]                  z ~ Laplace, unit variance (fat tails)
    sigma²[t+1, i] = omega[i] + a[i] * eps[t, i]² + b[i] * sigma²[t, i]     (GARCH(1,1))

`index` is the real index (S&P 500) log-return series; `factor` is one Gaussian factor per equity
sector and per non-equity asset class, so sector peers co-move. Bars are built around the close path:
the open is the previous close moved by an overnight gap (part of the day's move plus noise; ~0 for
24-hour markets), high/low extend beyond max/min(open, close) by a half-normal multiple of the day's
volatility, and volume is log-normal with a loading on |return| (busy days trade more).

If more bars are asked for than the index has, the missing (earliest) returns are drawn by a circular
block bootstrap (20-day blocks, seeded) from the real series and prepended, on business days before
the first real date; `SyntheticUniverse.bootstrapped` says how many bars that was.

The generator is pure numpy and vectorised across instruments; only the GARCH recursion loops over
time. 500 instruments x 2000 bars take about 0.1-0.2 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd

from joe.brokers.base import HISTORY_COLUMNS
from joe.core.models import AssetClass, Instrument

TRADING_DAYS = 252
BLOCK = 20  # bootstrap block length (about one trading month keeps volatility clusters intact)


@dataclass(frozen=True, slots=True)
class ClassSpec:
    """How one asset class is simulated. Ranges are drawn uniformly (prices and volumes log-uniformly)."""

    asset_class: AssetClass
    tag: str
    label: str
    share: float
    beta: tuple[float, float]
    idio_vol: tuple[float, float]  # annualised
    factor_vol: float  # annualised vol of the class/sector common factor
    price: tuple[float, float]  # last close
    volume: tuple[float, float]  # typical daily volume
    gap_weight: float  # share of the day's move that happens overnight (24h markets: ~0)
    tick: float | None  # None: scale the tick to the price


CLASSES: tuple[ClassSpec, ...] = (
    ClassSpec(
        AssetClass.EQUITY,
        "EQ",
        "equity",
        0.62,
        (0.5, 1.6),
        (0.15, 0.45),
        0.10,
        (8, 400),
        (2e5, 2e7),
        0.35,
        0.01,
    ),
    ClassSpec(
        AssetClass.ETF, "ETF", "ETF", 0.10, (0.8, 1.1), (0.03, 0.08), 0.04, (20, 300), (1e6, 5e7), 0.35, 0.01
    ),
    ClassSpec(
        AssetClass.FX,
        "FX",
        "FX pair",
        0.08,
        (-0.2, 0.2),
        (0.05, 0.11),
        0.05,
        (0.6, 1.6),
        (1e8, 1e9),
        0.05,
        0.00001,
    ),
    ClassSpec(
        AssetClass.CRYPTO,
        "CR",
        "crypto asset",
        0.12,
        (0.3, 1.5),
        (0.45, 0.95),
        0.45,
        (0.05, 40000),
        (1e5, 5e8),
        0.05,
        None,
    ),
    ClassSpec(
        AssetClass.COMMODITY,
        "CM",
        "commodity",
        0.08,
        (-0.1, 0.6),
        (0.15, 0.35),
        0.12,
        (2, 2000),
        (1e4, 1e6),
        0.2,
        None,
    ),
)

# Equity sectors: (code, name, beta multiplier).
SECTORS: tuple[tuple[str, str, float], ...] = (
    ("TEC", "Technology", 1.2),
    ("FIN", "Financials", 1.1),
    ("HLT", "Health Care", 0.85),
    ("ENE", "Energy", 1.0),
    ("IND", "Industrials", 1.05),
    ("CON", "Consumer", 0.95),
    ("UTL", "Utilities", 0.55),
    ("MAT", "Materials", 1.0),
    ("COM", "Communications", 1.0),
    ("REI", "Real Estate", 0.8),
)


@dataclass(frozen=True, eq=False)
class SyntheticUniverse:
    """Generated bars as (bars x instruments) float64 arrays, plus what drove them."""

    instruments: tuple[Instrument, ...]
    dates: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    beta: np.ndarray
    index_returns: np.ndarray
    bootstrapped: int = 0
    seed: int = 0
    sector: tuple[str, ...] = field(default=())

    @property
    def symbols(self) -> list[str]:
        return [i.symbol for i in self.instruments]

    def column(self, field_name: str) -> np.ndarray:
        """One of open/high/low/close/volume as a (bars x instruments) array."""
        if field_name not in HISTORY_COLUMNS:
            raise KeyError(f"unknown field {field_name!r}; choose one of {', '.join(HISTORY_COLUMNS)}")
        arr: np.ndarray = getattr(self, field_name)
        return arr

    def frame(self, j: int) -> pd.DataFrame:
        """The history frame (HISTORY_COLUMNS, UTC index named ts) of instrument number `j`."""
        data = np.column_stack([self.column(c)[:, j] for c in HISTORY_COLUMNS])  # one block: fast to build
        return pd.DataFrame(data, index=self.dates, columns=list(HISTORY_COLUMNS))

    def panel(self, field_name: str) -> pd.DataFrame:
        """A wide frame: dates x symbols for one field."""
        return pd.DataFrame(self.column(field_name), index=self.dates, columns=self.symbols)


def _class_counts(n: int) -> list[int]:
    """Split n instruments over the classes by share (largest remainder, deterministic)."""
    shares = np.array([c.share for c in CLASSES])
    raw = shares / shares.sum() * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return [int(c) for c in counts]


def _tick(price: float, spec: ClassSpec) -> Decimal:
    if spec.tick is not None:
        return Decimal(str(spec.tick))
    exp = int(np.clip(np.floor(np.log10(price)) - 3, -6, 0))
    return Decimal(1).scaleb(exp)


def _index_path(
    index_returns: pd.Series | None, bars: int, rng: np.random.Generator, end: pd.Timestamp
) -> tuple[np.ndarray, pd.DatetimeIndex, int]:
    """The driving index returns and their dates, bootstrapping the earliest part when needed."""
    if index_returns is None:
        # No real index given: a GARCH-free Gaussian index (about 16% annual vol), still seeded.
        r = rng.normal(0.0003, 0.01, bars)
        dates = pd.bdate_range(end=end.tz_localize(None), periods=bars, tz="UTC", name="ts")
        return r, dates, bars
    s = index_returns.dropna()
    if s.empty:
        raise ValueError("index_returns has no finite values")
    real = s.to_numpy(dtype="float64")[-bars:]
    real_dates = pd.DatetimeIndex(s.index[-bars:])
    real_dates = real_dates.tz_localize("UTC") if real_dates.tz is None else real_dates.tz_convert("UTC")
    extra = bars - len(real)
    if extra <= 0:
        return real, real_dates.rename("ts"), 0
    full = s.to_numpy(dtype="float64")
    n_blocks = -(-extra // BLOCK)
    starts = rng.integers(0, len(full), n_blocks)
    idx = (starts[:, None] + np.arange(BLOCK)[None, :]) % len(full)
    boot = full[idx.ravel()][:extra]
    first = real_dates[0].tz_localize(None)
    boot_dates = pd.bdate_range(end=first - pd.offsets.BDay(1), periods=extra, tz="UTC")
    return np.concatenate([boot, real]), boot_dates.append(real_dates).rename("ts"), extra


def synthetic_universe(
    n: int = 500,
    bars: int = 2000,
    seed: int = 7,
    index_returns: pd.Series | None = None,
    end: pd.Timestamp | None = None,
) -> SyntheticUniverse:
    """Generate `n` labelled synthetic instruments with `bars` daily bars, deterministic by `seed`.

    `index_returns` are daily log returns with a DatetimeIndex (the real SPX in the sample source); the
    synthetic bars share its last `bars` dates. Without it a Gaussian index on business days ending at
    `end` (default 2018-12-31) is used instead.
    """
    if n < 1 or bars < 2:
        raise ValueError(f"need n >= 1 and bars >= 2, got n={n}, bars={bars}")
    rng = np.random.default_rng(seed)
    idx_r, dates, boot = _index_path(index_returns, bars, rng, end or pd.Timestamp("2018-12-31"))

    counts = _class_counts(n)
    cls = np.repeat(np.arange(len(CLASSES)), counts)  # class number of each instrument
    sector = np.full(n, -1)
    eq = cls == 0
    sector[eq] = np.arange(eq.sum()) % len(SECTORS)
    # Factor groups: one per equity sector, then one per non-equity class.
    group = np.where(eq, sector, len(SECTORS) + cls - 1)
    n_groups = len(SECTORS) + len(CLASSES) - 1

    def draw(attr: str) -> np.ndarray:
        lo = np.array([getattr(c, attr)[0] for c in CLASSES])[cls]
        hi = np.array([getattr(c, attr)[1] for c in CLASSES])[cls]
        return rng.uniform(lo, hi)

    def draw_log(attr: str) -> np.ndarray:
        lo = np.log(np.array([getattr(c, attr)[0] for c in CLASSES])[cls])
        hi = np.log(np.array([getattr(c, attr)[1] for c in CLASSES])[cls])
        return np.exp(rng.uniform(lo, hi))

    beta = draw("beta")
    beta[eq] *= np.array([s[2] for s in SECTORS])[sector[eq]]
    idio_d = draw("idio_vol") / np.sqrt(TRADING_DAYS)
    last_price = draw_log("price")
    base_vol = draw_log("volume")
    drift = rng.normal(0.0, 0.08, n) / TRADING_DAYS
    group_vol = np.array([0.10] * len(SECTORS) + [c.factor_vol for c in CLASSES[1:]]) / np.sqrt(TRADING_DAYS)
    factors = rng.normal(0.0, 1.0, (bars, n_groups)) * group_vol

    # GARCH(1,1) idiosyncratic noise. Shocks are Laplace (a normal scaled by sqrt of an Exp(1) draw): unit
    # variance, excess kurtosis 3, and much cheaper to draw than Student-t. Noise is drawn in float32.
    a = rng.uniform(0.04, 0.10, n)
    b = np.minimum(rng.uniform(0.86, 0.93, n), 0.985 - a)
    var = idio_d**2
    omega = var * (1.0 - a - b)
    noise = rng.standard_normal((5, bars, n), dtype=np.float32)
    z = noise[0] * np.sqrt(rng.standard_exponential((bars, n), dtype=np.float32))
    sig = np.empty((bars, n))
    eps = np.empty((bars, n))
    s2 = var.copy()
    for t in range(bars):
        np.sqrt(s2, out=sig[t])
        np.multiply(sig[t], z[t], out=eps[t])
        s2 = omega + a * eps[t] ** 2 + b * s2

    r = eps
    r += beta * idx_r[:, None]
    r += factors[:, group]
    r += drift
    np.clip(r, -0.4, 0.4, out=r)  # no synthetic day moves more than exp(0.4)-1 = 49% up or 33% down
    logc = np.cumsum(r, axis=0)
    logc -= logc[-1]
    close = np.exp(logc, out=logc)
    close *= last_price

    # Bars around the close path; `day_vol` is each bar's total volatility (idiosyncratic + market).
    day_vol = sig
    day_vol **= 2
    day_vol += (beta * idx_r.std()) ** 2
    np.sqrt(day_vol, out=day_vol)
    gap_w = np.array([c.gap_weight for c in CLASSES])[cls]
    open_ = np.empty((bars, n))
    open_[1:] = close[:-1]
    open_[0] = close[0] * np.exp(-r[0])
    open_ *= np.exp(gap_w * (r + 0.25 * day_vol * noise[1]))
    high = np.maximum(open_, close)
    high *= np.exp(0.5 * day_vol * np.abs(noise[2]))
    low = np.minimum(open_, close)
    low *= np.exp(-0.5 * day_vol * np.abs(noise[3]))
    busy = np.abs(r) / day_vol.mean(axis=0)
    volume = np.round(base_vol * np.exp(0.6 * busy + 0.35 * noise[4] - 0.6))

    instruments = []
    sector_names = []
    serial = [0] * len(CLASSES)
    for j in range(n):
        c = int(cls[j])
        serial[c] += 1
        spec = CLASSES[c]
        if c == 0:
            code, sname, _ = SECTORS[int(sector[j])]
            symbol, name = f"SYN-{code}{serial[c]:03d}", f"Synthetic {sname} equity {serial[c]:03d}"
        else:
            sname = spec.label
            symbol, name = f"SYN-{spec.tag}{serial[c]:03d}", f"Synthetic {spec.label} {serial[c]:03d}"
        sector_names.append(sname)
        instruments.append(
            Instrument(
                symbol=symbol,
                asset_class=spec.asset_class,
                name=name,
                currency="USD",
                exchange="SYNTHETIC",
                tick_size=_tick(float(last_price[j]), spec),
                synthetic=True,
            )
        )
    return SyntheticUniverse(
        instruments=tuple(instruments),
        dates=dates,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        beta=beta,
        index_returns=idx_r,
        bootstrapped=boot,
        seed=seed,
        sector=tuple(sector_names),
    )
