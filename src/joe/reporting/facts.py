"""Lossless JSON form of a `ReportContext` (`facts.json`), so `joe report` can re-render a run.

No pickle: decimals are strings, datetimes ISO 8601, frames are split into index/columns/data.
`context_from_facts(context_to_facts(ctx))` gives back an equal context (frames compared
with `DataFrame.equals`).
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from joe.core.models import Direction, Fill, Side, Signal
from joe.reporting.context import PositionFacts, RegimeFacts, ReportContext, ScoreFacts, SignalFacts
from joe.reporting.data_quality import input_to_json, inputs_from_json, quality_from_json, quality_to_json

FACTS_SCHEMA = "joe.facts/1"


def plain_decimal(value: Decimal) -> str:
    """A decimal in plain positional notation: no exponent (`0E-8`), no negative zero (`-0.0000`)."""
    if value == 0:
        return "0"
    return format(value, "f")


def dec(value: Decimal | None) -> str | None:
    """A decimal as an exact plain string (None stays None)."""
    return None if value is None else plain_decimal(value)


def undec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def _plain(value: Any) -> Any:
    """Convert numpy/pandas/decimal scalars to JSON-native values (NaN → None)."""
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def frame_to_json(df: pd.DataFrame) -> dict[str, Any]:
    """A frame as {index_kind, index, columns, datetime_columns, data}."""
    if isinstance(df.index, pd.DatetimeIndex):
        kind, index = "datetime", [ts.isoformat() for ts in df.index]
    elif isinstance(df.index, pd.RangeIndex):
        kind, index = "range", []
    else:
        kind, index = "other", [_plain(v) for v in df.index]
    dt_cols = [str(c) for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])]
    data = [[_plain(v) for v in row] for row in df.itertuples(index=False, name=None)]
    return {
        "index_kind": kind,
        "index": index,
        "columns": [str(c) for c in df.columns],
        "datetime_columns": dt_cols,
        "data": data,
    }


def frame_from_json(obj: dict[str, Any] | None) -> pd.DataFrame:
    """Inverse of `frame_to_json`; missing values come back as NaN."""
    if not obj or not obj.get("columns"):
        return pd.DataFrame()
    df = pd.DataFrame(obj["data"], columns=obj["columns"])
    for col in df.columns:
        if col in obj.get("datetime_columns", []):
            df[col] = pd.to_datetime(df[col], format="ISO8601")
        elif df[col].dtype == object and all(v is None or isinstance(v, (int, float)) for v in df[col]):
            df[col] = df[col].astype(float)
    if obj["index_kind"] == "datetime":
        df.index = pd.DatetimeIndex(pd.to_datetime(obj["index"], format="ISO8601"))
    elif obj["index_kind"] == "other":
        df.index = pd.Index(obj["index"])
    return df


def signal_to_json(sig: Signal) -> dict[str, Any]:
    return {
        "signal_id": sig.signal_id,
        "symbol": sig.symbol,
        "strategy": sig.strategy,
        "direction": sig.direction.value,
        "entry": dec(sig.entry),
        "stop_loss": dec(sig.stop_loss),
        "take_profit": dec(sig.take_profit),
        "confidence": float(sig.confidence),
        "reason": sig.reason,
        "as_of": iso(sig.as_of),
        "trailing_distance": dec(sig.trailing_distance),
        "score": None if sig.score is None else float(sig.score),
        "quantity": dec(sig.quantity),
        "risk_grade": sig.risk_grade,
        "meta": _plain(sig.meta),
    }


def signal_from_json(d: dict[str, Any]) -> Signal:
    return Signal(
        signal_id=d["signal_id"],
        symbol=d["symbol"],
        strategy=d["strategy"],
        direction=Direction(d["direction"]),
        entry=Decimal(d["entry"]),
        stop_loss=Decimal(d["stop_loss"]),
        take_profit=Decimal(d["take_profit"]),
        confidence=float(d["confidence"]),
        reason=d["reason"],
        as_of=datetime.fromisoformat(d["as_of"]),
        trailing_distance=undec(d.get("trailing_distance")),
        score=d.get("score"),
        quantity=undec(d.get("quantity")),
        risk_grade=d.get("risk_grade"),
        meta=dict(d.get("meta") or {}),
    )


def fill_to_json(f: Fill) -> dict[str, Any]:
    return {
        "fill_id": f.fill_id,
        "client_order_id": f.client_order_id,
        "symbol": f.symbol,
        "side": f.side.value,
        "quantity": dec(f.quantity),
        "price": dec(f.price),
        "ts": iso(f.ts),
        "commission": dec(f.commission),
        "broker_order_id": f.broker_order_id,
    }


def fill_from_json(d: dict[str, Any]) -> Fill:
    return Fill(
        fill_id=d["fill_id"],
        client_order_id=d["client_order_id"],
        symbol=d["symbol"],
        side=Side(d["side"]),
        quantity=Decimal(d["quantity"]),
        price=Decimal(d["price"]),
        ts=datetime.fromisoformat(d["ts"]),
        commission=Decimal(d.get("commission") or "0"),
        broker_order_id=d.get("broker_order_id"),
    )


def position_to_json(p: PositionFacts) -> dict[str, Any]:
    return {
        "symbol": p.symbol,
        "direction": p.direction.value,
        "quantity": dec(p.quantity),
        "avg_price": dec(p.avg_price),
        "market_price": dec(p.market_price),
        "unrealized_pnl": dec(p.unrealized_pnl),
        "stop_loss": dec(p.stop_loss),
        "take_profit": dec(p.take_profit),
        "opened_at": iso(p.opened_at),
        "marked_at": iso(p.marked_at),
    }


def position_from_json(d: dict[str, Any]) -> PositionFacts:
    return PositionFacts(
        symbol=d["symbol"],
        direction=Direction(d["direction"]),
        quantity=Decimal(d["quantity"]),
        avg_price=Decimal(d["avg_price"]),
        market_price=undec(d.get("market_price")),
        unrealized_pnl=Decimal(d.get("unrealized_pnl") or "0"),
        stop_loss=undec(d.get("stop_loss")),
        take_profit=undec(d.get("take_profit")),
        opened_at=datetime.fromisoformat(d["opened_at"]) if d.get("opened_at") else None,
        marked_at=datetime.fromisoformat(d["marked_at"]) if d.get("marked_at") else None,
    )


def context_to_facts(ctx: ReportContext) -> dict[str, Any]:
    """The whole context as JSON-native data (frames included)."""
    return {
        "schema": FACTS_SCHEMA,
        "run_id": ctx.run_id,
        "mode": ctx.mode,
        "broker": ctx.broker,
        "source": ctx.source,
        "source_description": ctx.source_description,
        "as_of": iso(ctx.as_of),
        "started_at": iso(ctx.started_at),
        "finished_at": iso(ctx.finished_at),
        "regime": {
            "label": ctx.regime.label,
            "confidence": float(ctx.regime.confidence),
            "stressed": bool(ctx.regime.stressed),
            "evidence": _plain(ctx.regime.evidence),
        },
        "regime_history": frame_to_json(ctx.regime_history),
        "top_scores": [
            {
                "symbol": s.symbol,
                "name": s.name,
                "total": float(s.total),
                "components": _plain(s.components),
                "scans": list(s.scans),
            }
            for s in ctx.top_scores
        ],
        "signals": [
            {
                "signal": signal_to_json(sf.signal),
                "risk_grade": sf.risk_grade,
                "risk_dimensions": _plain(sf.risk_dimensions),
                "vetoed": sf.vetoed,
                "veto_reason": sf.veto_reason,
                "quantity": dec(sf.quantity),
                "execution": sf.execution,
                "price_history": frame_to_json(sf.price_history),
            }
            for sf in ctx.signals
        ],
        "positions": [position_to_json(p) for p in ctx.positions],
        "fills": [fill_to_json(f) for f in ctx.fills],
        "equity_curve": frame_to_json(ctx.equity_curve),
        "account": {k: _plain(v) for k, v in ctx.account.items()},
        "stage_timings": {k: float(v) for k, v in ctx.stage_timings.items()},
        "warnings": list(ctx.warnings),
        "index_name": ctx.index_name,
        "data_quality": quality_to_json(ctx.data_quality),
        "regime_inputs": [input_to_json(i) for i in ctx.regime_inputs],
    }


def context_from_facts(d: dict[str, Any]) -> ReportContext:
    """Rebuild a `ReportContext` from `context_to_facts` output."""
    if d.get("schema") != FACTS_SCHEMA:
        raise ValueError(f"unsupported facts schema {d.get('schema')!r}, expected {FACTS_SCHEMA}")
    r = d["regime"]
    return ReportContext(
        run_id=d["run_id"],
        mode=d["mode"],
        broker=d["broker"],
        source=d["source"],
        source_description=d["source_description"],
        as_of=date.fromisoformat(d["as_of"]),
        started_at=datetime.fromisoformat(d["started_at"]),
        finished_at=datetime.fromisoformat(d["finished_at"]),
        regime=RegimeFacts(r["label"], r["confidence"], r["stressed"], dict(r["evidence"])),
        regime_history=frame_from_json(d.get("regime_history")),
        top_scores=[
            ScoreFacts(s["symbol"], s["name"], s["total"], dict(s["components"]), list(s["scans"]))
            for s in d.get("top_scores", [])
        ],
        signals=[
            SignalFacts(
                signal=signal_from_json(s["signal"]),
                risk_grade=s["risk_grade"],
                risk_dimensions=dict(s["risk_dimensions"]),
                vetoed=s["vetoed"],
                veto_reason=s.get("veto_reason"),
                quantity=undec(s.get("quantity")),
                execution=s.get("execution", ""),
                price_history=frame_from_json(s.get("price_history")),
            )
            for s in d.get("signals", [])
        ],
        positions=[position_from_json(p) for p in d.get("positions", [])],
        fills=[fill_from_json(f) for f in d.get("fills", [])],
        equity_curve=frame_from_json(d.get("equity_curve")),
        account={k: Decimal(str(v)) for k, v in d.get("account", {}).items() if v is not None},
        stage_timings=dict(d.get("stage_timings", {})),
        warnings=list(d.get("warnings", [])),
        index_name=d.get("index_name", "S&P 500"),
        data_quality=quality_from_json(d.get("data_quality")),
        regime_inputs=inputs_from_json(d.get("regime_inputs")),
    )


def save_facts(ctx: ReportContext, path: Path) -> None:
    """Write `facts.json` (atomic replace so a crash never leaves half a file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(context_to_facts(ctx), indent=1), encoding="utf-8")
    tmp.replace(path)


def load_facts(path: Path) -> ReportContext:
    """Read a `facts.json` written by `save_facts`."""
    return context_from_facts(json.loads(path.read_text(encoding="utf-8")))
