"""`--source cache[:SOURCE]`: backtest on the daily bars the broker runs left in the bar cache.

`joe run --broker capital|ibkr` keeps every daily bar it fetched under `<data dir>/cache/bars/<source>/1d/`
(`joe.data.cache.BarCache`). This serves those files, read through `BarCache.load`, as a local source
(`FrameSource`: clipped at the as-of date, universes, history) — no broker connection.
`cache` alone picks the only source in the cache; with several, name one (`cache:capital`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from joe.core.models import Instrument
from joe.data.cache import BarCache
from joe.data.errors import DataError
from joe.data.files import guess_asset_class
from joe.data.frames import FrameSource

TIMEFRAME = "1d"


class CacheSource(FrameSource):
    """The bar cache's daily bars of one source, as a local `MarketData`."""

    name = "cache"

    def __init__(self, data_dir: Path, source: str | None, as_of: date | None) -> None:
        super().__init__(as_of)
        root = Path(data_dir) / "cache" / "bars"
        found = sorted(p.name for p in root.iterdir() if (p / TIMEFRAME).is_dir()) if root.is_dir() else []
        if source is None:
            if len(found) != 1:
                raise DataError(
                    f"cache source: {'no daily bars' if not found else 'several sources'} in {root}"
                    + (f" ({', '.join(found)}): name one, e.g. --source cache:{found[0]}" if found else "")
                    + (
                        "; run `joe run --once --broker capital` (or ibkr) first to fill it"
                        if not found
                        else ""
                    )
                )
            source = found[0]
        folder = root / source / TIMEFRAME
        if not folder.is_dir():
            raise DataError(
                f"cache source: no daily bars of {source!r} in {root} "
                f"(cached: {', '.join(found) or 'nothing'})"
            )
        cache = BarCache(root)
        self.source = source
        self._frames: dict[str, pd.DataFrame] = {}
        for path in sorted(folder.glob("*.parquet")):
            sym = path.stem.replace("%2F", "/")
            frame = cache.load(source, sym, TIMEFRAME)
            if frame is not None and len(frame):
                self._frames[sym] = frame.sort_index()
                self._instruments[sym] = Instrument(symbol=sym, asset_class=guess_asset_class(sym), name=sym)
        if not self._frames:
            raise DataError(f"cache source: no readable daily bars in {folder}")
        self._last = max(f.index[-1] for f in self._frames.values()).date()

    @property
    def last_date(self) -> date:
        return self._last

    def _raw(self, symbol: str) -> pd.DataFrame | None:
        return self._frames.get(symbol)

    def describe(self) -> str:
        return f"bar cache of {self.source}: {len(self._frames)} symbols up to {self._last}"
