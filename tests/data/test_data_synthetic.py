"""The synthetic universe: seeded, well-formed bars, beta to the index, volatility clustering, labelled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.core.models import AssetClass
from joe.data.sample import INDEX_SYMBOL, load_sample
from joe.data.synthetic import synthetic_universe


@pytest.fixture(scope="module")
def index_returns() -> pd.Series:
    close = load_sample().frames[INDEX_SYMBOL]["close"]
    return np.log(close).diff().dropna()


@pytest.fixture(scope="module")
def big(index_returns: pd.Series):
    return synthetic_universe(n=300, bars=2000, seed=11, index_returns=index_returns)


def test_deterministic_by_seed(index_returns: pd.Series) -> None:
    a = synthetic_universe(n=40, bars=300, seed=3, index_returns=index_returns)
    b = synthetic_universe(n=40, bars=300, seed=3, index_returns=index_returns)
    c = synthetic_universe(n=40, bars=300, seed=4, index_returns=index_returns)
    for f in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(a.column(f), b.column(f))
    assert a.symbols == b.symbols
    assert not np.array_equal(a.close, c.close)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), bars=st.integers(2, 400), seed=st.integers(0, 2**32 - 1))
def test_shapes_and_ohlc_invariants(n: int, bars: int, seed: int) -> None:
    u = synthetic_universe(n=n, bars=bars, seed=seed, index_returns=_INDEX)
    for f in ("open", "high", "low", "close", "volume"):
        arr = u.column(f)
        assert arr.shape == (bars, n) and arr.dtype == np.float64 and np.isfinite(arr).all()
    assert (u.high >= np.maximum(u.open, u.close)).all()
    assert (u.low <= np.minimum(u.open, u.close)).all()
    assert (u.low > 0).all() and (u.volume >= 0).all()
    assert len(u.dates) == bars and u.dates.is_unique and u.dates.is_monotonic_increasing
    assert str(u.dates.tz) == "UTC"
    assert len(set(u.symbols)) == n
    frame = u.frame(n - 1)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"] and frame.index.name == "ts"


_INDEX = np.log(load_sample().frames[INDEX_SYMBOL]["close"]).diff().dropna()


def test_dates_are_the_real_index_dates(index_returns: pd.Series, big) -> None:
    assert big.dates[-1] == index_returns.index[-1]
    assert (big.dates == index_returns.index[-2000:]).all()
    np.testing.assert_allclose(big.index_returns, index_returns.to_numpy()[-2000:])
    assert big.bootstrapped == 0


def test_more_bars_than_the_index_bootstraps_the_earliest_part(index_returns: pd.Series) -> None:
    extra = 300
    u = synthetic_universe(n=5, bars=len(index_returns) + extra, seed=1, index_returns=index_returns)
    assert u.bootstrapped == extra
    assert u.dates.is_unique and u.dates.is_monotonic_increasing
    assert u.dates[extra] == index_returns.index[0]
    np.testing.assert_allclose(u.index_returns[extra:], index_returns.to_numpy())
    # Bootstrapped returns are drawn from the real ones.
    assert np.isin(u.index_returns[:extra], index_returns.to_numpy()).all()


def test_several_asset_classes_and_labelled_synthetic(big) -> None:
    classes = {i.asset_class for i in big.instruments}
    assert {
        AssetClass.EQUITY,
        AssetClass.ETF,
        AssetClass.FX,
        AssetClass.CRYPTO,
        AssetClass.COMMODITY,
    } <= classes
    for inst in big.instruments:
        assert inst.synthetic and inst.symbol.startswith("SYN-") and inst.name.startswith("Synthetic")


def test_beta_to_the_index_is_roughly_as_configured(big) -> None:
    r = np.diff(np.log(big.close), axis=0)
    x = big.index_returns[1:]
    # Equities and ETFs: enough signal to estimate beta well over 2000 bars.
    eq = np.array([i.asset_class in (AssetClass.EQUITY, AssetClass.ETF) for i in big.instruments])
    xc = x - x.mean()
    est = (xc @ (r[:, eq] - r[:, eq].mean(axis=0))) / (xc @ xc)
    err = np.abs(est - big.beta[eq])
    assert err.mean() < 0.08 and err.max() < 0.3
    # And the synthetic market moves with the real one.
    corr = np.corrcoef(r[:, eq].mean(axis=1), x)[0, 1]
    assert corr > 0.8


def test_idiosyncratic_volatility_clusters(big) -> None:
    r = np.diff(np.log(big.close), axis=0)
    resid = r - big.beta * big.index_returns[1:, None]
    sq = resid**2 - (resid**2).mean(axis=0)
    ac1 = (sq[1:] * sq[:-1]).mean(axis=0) / sq.var(axis=0)
    assert ac1.mean() > 0.03
    assert (ac1 > 0).mean() > 0.8


def test_volume_rises_with_absolute_return(big) -> None:
    r = np.abs(np.diff(np.log(big.close), axis=0))
    v = np.log(big.volume[1:])
    corr = np.mean([np.corrcoef(r[:, j], v[:, j])[0, 1] for j in range(big.close.shape[1])])
    assert corr > 0.1


def test_without_an_index_it_still_works_and_is_seeded() -> None:
    a = synthetic_universe(n=3, bars=50, seed=2)
    b = synthetic_universe(n=3, bars=50, seed=2)
    np.testing.assert_array_equal(a.close, b.close)
    assert a.dates[-1] == pd.Timestamp("2018-12-31", tz="UTC")


@pytest.mark.parametrize(("n", "bars"), [(0, 10), (5, 1)])
def test_rejects_empty_requests(n: int, bars: int) -> None:
    with pytest.raises(ValueError, match="need n >= 1"):
        synthetic_universe(n=n, bars=bars)


def test_panel_is_dates_by_symbols(big) -> None:
    p = big.panel("close")
    assert p.shape == (2000, 300) and list(p.columns) == big.symbols
    with pytest.raises(KeyError):
        big.column("vwap")
