"""The simulator's market catalogue: epics, navigation tree and dealing rules (prices: `path`, `history`)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from decimal import Decimal

from joe.simulators.capital.bars import RESOLUTION_SECONDS

__all__ = ["RESOLUTION_SECONDS", "MarketSpec", "sentiment_for"]


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One simulated market."""

    epic: str
    name: str
    type: str  # COMMODITIES, CURRENCIES, INDICES, SHARES, CRYPTOCURRENCIES
    node: str
    start: float
    tick: Decimal
    margin_pct: Decimal
    currency: str = "USD"
    min_size: Decimal = Decimal("0.01")
    max_size: Decimal = Decimal(10000)
    size_increment: Decimal = Decimal("0.01")
    min_stop_pct: Decimal = Decimal("0.1")  # minStopOrProfitDistance, PERCENTAGE
    max_stop_pct: Decimal = Decimal(75)
    weekends: bool = False

    @property
    def decimals(self) -> int:
        """Decimal places of the price grid (`decimalPlacesFactor`): 3 for a 0.001 tick."""
        return max(0, -int(self.tick.as_tuple().exponent))

    @property
    def pip_position(self) -> int:
        """`pipPosition`: the pip is one digit coarser than the tick (EURUSD 0.00001 → 4, SILVER → 2)."""
        return max(0, self.decimals - 1)


def _m(
    epic: str,
    name: str,
    typ: str,
    node: str,
    start: float,
    tick: str,
    margin: str,
    weekends: bool = False,
    min_size: str = "0.01",
) -> MarketSpec:
    return MarketSpec(
        epic,
        name,
        typ,
        node,
        start,
        Decimal(tick),
        Decimal(margin),
        weekends=weekends,
        min_size=Decimal(min_size),
        size_increment=Decimal(min_size),
    )


NAV_ROOT = [
    ("hierarchy_v1.commodities_group", "commodities_group"),
    ("hierarchy_v1.currencies_group", "currencies_group"),
    ("hierarchy_v1.indices_group", "indices_group"),
    ("hierarchy_v1.shares_group", "shares_group"),
    ("hierarchy_v1.crypto_group", "crypto_group"),
]
NAV_CHILDREN = {"hierarchy_v1.shares_group": [("hierarchy_v1.shares_group.us", "us_shares")]}

CATALOG: tuple[MarketSpec, ...] = (
    _m("GOLD", "Gold", "COMMODITIES", "hierarchy_v1.commodities_group", 2000.0, "0.01", "5"),
    _m("SILVER", "Silver", "COMMODITIES", "hierarchy_v1.commodities_group", 24.0, "0.001", "10"),
    _m("OIL_CRUDE", "US Crude Oil Spot", "COMMODITIES", "hierarchy_v1.commodities_group", 75.0, "0.01", "10"),
    _m("NATURALGAS", "Natural Gas", "COMMODITIES", "hierarchy_v1.commodities_group", 2.8, "0.001", "10"),
    _m("COPPER", "Copper", "COMMODITIES", "hierarchy_v1.commodities_group", 3.9, "0.0001", "10"),
    _m(
        "EURUSD",
        "EUR/USD",
        "CURRENCIES",
        "hierarchy_v1.currencies_group",
        1.08,
        "0.00001",
        "3.33",
        min_size="100",
    ),
    _m(
        "GBPUSD",
        "GBP/USD",
        "CURRENCIES",
        "hierarchy_v1.currencies_group",
        1.27,
        "0.00001",
        "3.33",
        min_size="100",
    ),
    _m(
        "USDJPY",
        "USD/JPY",
        "CURRENCIES",
        "hierarchy_v1.currencies_group",
        150.0,
        "0.001",
        "3.33",
        min_size="100",
    ),
    _m(
        "AUDUSD",
        "AUD/USD",
        "CURRENCIES",
        "hierarchy_v1.currencies_group",
        0.66,
        "0.00001",
        "5",
        min_size="100",
    ),
    _m(
        "USDCHF",
        "USD/CHF",
        "CURRENCIES",
        "hierarchy_v1.currencies_group",
        0.88,
        "0.00001",
        "3.33",
        min_size="100",
    ),
    _m("US500", "US 500", "INDICES", "hierarchy_v1.indices_group", 5000.0, "0.1", "5"),
    _m("US100", "US Tech 100", "INDICES", "hierarchy_v1.indices_group", 17500.0, "0.1", "5"),
    _m("US30", "US Wall Street 30", "INDICES", "hierarchy_v1.indices_group", 38000.0, "0.1", "5"),
    _m("UK100", "UK 100", "INDICES", "hierarchy_v1.indices_group", 7600.0, "0.1", "5"),
    _m("DE40", "Germany 40", "INDICES", "hierarchy_v1.indices_group", 17000.0, "0.1", "5"),
    _m("AAPL", "Apple Inc", "SHARES", "hierarchy_v1.shares_group.us", 190.0, "0.01", "20", min_size="1"),
    _m("MSFT", "Microsoft Corp", "SHARES", "hierarchy_v1.shares_group.us", 410.0, "0.01", "20", min_size="1"),
    _m("TSLA", "Tesla Inc", "SHARES", "hierarchy_v1.shares_group.us", 200.0, "0.01", "20", min_size="1"),
    _m("AMZN", "Amazon.com Inc", "SHARES", "hierarchy_v1.shares_group.us", 175.0, "0.01", "20", min_size="1"),
    _m("NVDA", "NVIDIA Corp", "SHARES", "hierarchy_v1.shares_group.us", 800.0, "0.01", "20", min_size="1"),
    _m("BTCUSD", "Bitcoin/USD", "CRYPTOCURRENCIES", "hierarchy_v1.crypto_group", 60000.0, "0.01", "50", True),
    _m("ETHUSD", "Ethereum/USD", "CRYPTOCURRENCIES", "hierarchy_v1.crypto_group", 3000.0, "0.01", "50", True),
)
BY_EPIC = {m.epic: m for m in CATALOG}


def _rng(seed: int, *parts: str) -> random.Random:
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def sentiment_for(seed: int, epic: str) -> tuple[float, float]:
    """A stable (long %, short %) pair per epic."""
    long_pct = round(_rng(seed, epic, "sentiment").uniform(15, 85), 2)
    return long_pct, round(100 - long_pct, 2)
