"""Quote batches: the unit the quote hot path hands on (`PriceStream` → `PositionMonitor`).

A `QuoteBatch` is four parallel numpy arrays, so a consumer checks a whole batch with a few
vectorised operations instead of paying Python overhead per quote. Instruments are small integers
from an `InstrumentIndex` (one per stream), so arrays can be indexed by instrument.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int32]
TsArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class InstrumentIndex:
    """Symbol ↔ dense integer id (0, 1, 2, …), assigned on first sight and never reused."""

    def __init__(self, symbols: Iterable[str] = ()) -> None:
        self._ids: dict[str, int] = {}
        self.symbols: list[str] = []
        for s in symbols:
            self.id(s)

    def id(self, symbol: str) -> int:
        """The id of `symbol`, assigning the next free one if it is new."""
        i = self._ids.get(symbol)
        if i is None:
            if not symbol:
                raise ValueError("an instrument symbol must not be empty")
            i = self._ids[symbol] = len(self.symbols)
            self.symbols.append(symbol)
        return i

    def get(self, symbol: str) -> int | None:
        return self._ids.get(symbol)

    def symbol(self, inst: int) -> str:
        return self.symbols[inst]

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._ids


@dataclass(frozen=True, slots=True, init=False)
class QuoteBatch:
    """Quotes in arrival order. Shapes: all four arrays 1-D of the same length n.

    - `inst`: int32 instrument ids (`InstrumentIndex`);
    - `ts`: int64 nanoseconds since the epoch, UTC (the broker's time when it gives one, else arrival);
    - `bid`, `ask`: float64 prices (the hot path compares floats; orders carry `Decimal`).

    Frozen; made once per batch on the quote path, so `__init__` sets the slots directly (the
    dataclass one calls `object.__setattr__` per field). Use `of` to convert and check arrays.
    """

    inst: IntArray
    ts: TsArray
    bid: FloatArray
    ask: FloatArray

    def __init__(self, inst: IntArray, ts: TsArray, bid: FloatArray, ask: FloatArray) -> None:
        _set_inst(self, inst)
        _set_ts(self, ts)
        _set_bid(self, bid)
        _set_ask(self, ask)

    @classmethod
    def of(
        cls,
        inst: npt.ArrayLike,
        ts: npt.ArrayLike,
        bid: npt.ArrayLike,
        ask: npt.ArrayLike,
    ) -> QuoteBatch:
        """Build a batch, converting dtypes; raises `ValueError` when the lengths differ or a price is
        not a positive finite number (a batch never carries a quote the monitor could misread)."""
        i = np.ascontiguousarray(inst, dtype=np.int32)
        t = np.ascontiguousarray(ts, dtype=np.int64)
        b = np.ascontiguousarray(bid, dtype=np.float64)
        a = np.ascontiguousarray(ask, dtype=np.float64)
        n = len(i)
        if not (len(t) == len(b) == len(a) == n) or i.ndim != 1:
            raise ValueError(
                f"quote batch arrays differ in length: inst={n} ts={len(t)} bid={len(b)} ask={len(a)}"
            )
        if n and not (np.isfinite(b).all() and np.isfinite(a).all() and (b > 0).all() and (a > 0).all()):
            raise ValueError("quote batch has a bid or ask that is not a positive finite number")
        if n and int(i.min()) < 0:
            raise ValueError("quote batch has a negative instrument id")
        return cls(i, t, b, a)

    def __len__(self) -> int:
        return len(self.inst)

    @property
    def mid(self) -> FloatArray:
        """(bid + ask) / 2 per quote."""
        return (self.bid + self.ask) * 0.5


# The slots' own setters: they bypass the frozen class's __setattr__ (which refuses).
_set_inst, _set_ts, _set_bid, _set_ask = (
    getattr(QuoteBatch, f).__set__ for f in QuoteBatch.__dataclass_fields__
)
