"""Paper execution costs: where a simulated order fills and what it pays.

Buys fill at the ask (or mid + half the configured spread when there is no quote) plus
slippage; sells at the bid minus slippage. Commission is per share with a minimum, plus an
optional percentage of notional — the IBKR-tiered shape most retail traders know.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from joe.config.schema import PaperConfig
from joe.core.models import Side

BPS = Decimal(10_000)
PRICE_Q = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class CostModel:
    """Spread, slippage and commission for paper fills (from `config/execution.yaml: paper`)."""

    spread_bps: Decimal = Decimal(2)
    slippage_bps: Decimal = Decimal(1)
    commission_per_share: Decimal = Decimal("0.005")
    commission_min: Decimal = Decimal(1)
    commission_pct: Decimal = Decimal(0)

    @classmethod
    def from_config(cls, cfg: PaperConfig) -> CostModel:
        return cls(
            cfg.spread_bps, cfg.slippage_bps, cfg.commission_per_share, cfg.commission_min, cfg.commission_pct
        )

    def fill_price(
        self, side: Side, reference: Decimal, bid: Decimal | None = None, ask: Decimal | None = None
    ) -> Decimal:
        """Price a market order of `side` fills at, given a reference (mid/close) and optional touch."""
        if side is Side.BUY:
            base = ask if ask is not None else reference * (1 + self.spread_bps / 2 / BPS)
            px = base * (1 + self.slippage_bps / BPS)
        else:
            base = bid if bid is not None else reference * (1 - self.spread_bps / 2 / BPS)
            px = base * (1 - self.slippage_bps / BPS)
        return px.quantize(PRICE_Q, ROUND_HALF_UP)

    def commission(self, quantity: Decimal, price: Decimal) -> Decimal:
        """Commission for one fill (always >= 0)."""
        per_share = abs(quantity) * self.commission_per_share
        pct = abs(quantity) * price * self.commission_pct / 100
        return max(self.commission_min, per_share + pct).quantize(Decimal("0.01"), ROUND_HALF_UP)
