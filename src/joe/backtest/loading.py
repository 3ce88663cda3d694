"""Opening a backtest's data: `--source sample | csv:PATH | parquet:PATH | cache[:SOURCE]`, once.

The market goes through the same `load_snapshot` as `joe run --once` (universe, the data-quality
stage, index and VIX), with the source clipped at `--to` (nothing after it is loaded) and every bar
kept (a run keeps only the newest few hundred; a backtest needs the whole history).
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

from joe.backtest.precompute import History
from joe.config.schema import ExecutionConfig
from joe.runtime.market import load_snapshot

ALL_BARS = 10**7


async def load_history(
    spec: str,
    config: ExecutionConfig,
    *,
    end: date | None = None,
    universe: str | None = None,
    date_format: str | None = None,
    data_dir: Path | None = None,
) -> History:
    """The market of `spec` up to `end` with its precomputed parts.

    `cache[:SOURCE]` reads the bar cache under `data_dir` (default `$JOE_DATA_DIR`).
    Raises `joe.data.errors.DataError` for a source that cannot be read (named in the message).
    """
    from joe.data import open_source

    kind, _, arg = spec.partition(":")
    source: Any
    if kind.strip().lower() == "cache":
        from joe.config.settings import load_settings
        from joe.data.cache import open_cache_source

        root = Path(data_dir) if data_dir is not None else Path(load_settings().data_dir)
        source = open_cache_source(root, arg.strip() or None, as_of=end)
    else:
        source = open_source(
            spec, as_of=end, n_synthetic=config.pipeline.universe_size, date_format=date_format
        )
    snap = await load_snapshot(source, universe, config.pipeline.universe_size, ALL_BARS)
    return History.build(snap)


def load_history_sync(spec: str, config: ExecutionConfig, **kw: object) -> History:
    return asyncio.run(load_history(spec, config, **kw))  # type: ignore[arg-type]
