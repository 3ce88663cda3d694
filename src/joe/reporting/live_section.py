"""The report's live sections: the broker's positions, orders and fills, and "live vs paper".

`live_vs_paper` pairs each signal's live entry fill with its paper-twin fill: fill price against the
model price, slippage in basis points (positive = live paid more than the model, either side), the
orders that filled in one and not the other, and the PnL gap that slippage made (model − live, in
the account currency). `write_live_section` writes `live.json`, adds the same document to the run's
`run.json` (key `live`, docs/report-schema.md) and appends the section to `report.md` and `report.html`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from joe.core.models import AccountInfo, Fill, Position, Side
from joe.core.order import Order

BP = Decimal(10_000)


@dataclass
class LiveFacts:
    """What a live or shadow run shows about the broker side."""

    mode: str
    broker: str
    reconciled: bool = True
    findings: list[str] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    twin_fills: list[Fill] = field(default_factory=list)
    outcomes: list[dict[str, str]] = field(default_factory=list)
    shadow_intents: list[dict[str, Any]] = field(default_factory=list)
    exits: list[dict[str, str]] = field(default_factory=list)  # strategy exits sent (reduce-only)
    book_exits: list[dict[str, str]] = field(default_factory=list)  # the twin's / shadow book's
    universe: list[str] = field(default_factory=list)  # the run's universe (a held symbol outside it exits)
    rollout: list[str] = field(default_factory=list)
    rollout_state: dict[str, Any] | None = None  # `Rollout.state()`: caps and the count so far
    equity: str = ""
    account: AccountInfo | None = None  # the broker's account as read after the reconciliation


def live_vs_paper(live: Sequence[Fill], paper: Sequence[Fill]) -> dict[str, Any]:
    """Pairs fills by client order id (live entry and paper-twin entry share it)."""
    by_live = {f.client_order_id: f for f in live}
    by_paper = {f.client_order_id: f for f in paper}
    rows, gap = [], Decimal(0)
    for coid in sorted(set(by_live) & set(by_paper)):
        lf, pf = by_live[coid], by_paper[coid]
        sign = Decimal(1) if lf.side is Side.BUY else Decimal(-1)
        slip = (lf.price - pf.price) / pf.price * BP * sign if pf.price else Decimal(0)
        cost = (lf.price - pf.price) * sign * lf.quantity
        gap -= cost
        rows.append(
            {
                "symbol": lf.symbol,
                "side": lf.side.value,
                "live_qty": str(lf.quantity),
                "paper_qty": str(pf.quantity),
                "live_price": str(lf.price),
                "model_price": str(pf.price),
                "slippage_bp": str(slip.quantize(Decimal("0.1"))),
            }
        )
    return {
        "pairs": rows,
        "live_only": sorted(f"{by_live[c].symbol} {c}" for c in set(by_live) - set(by_paper)),
        "paper_only": sorted(f"{by_paper[c].symbol} {c}" for c in set(by_paper) - set(by_live)),
        "pnl_gap": str(gap.quantize(Decimal("0.01"))),
    }


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out if rows else ["(none)"]


def _dec(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def account_to_dict(a: AccountInfo | None) -> dict[str, Any] | None:
    """The broker account's figures (decimal strings, in `currency`); the account id is left out."""
    if a is None:
        return None
    return {
        "currency": a.currency,
        "equity": str(a.equity),
        "cash": str(a.cash),
        "available_funds": str(a.available_funds),
        "margin_used": str(a.margin_used),
        "excess_liquidity": _dec(a.excess_liquidity),
        "buying_power": _dec(a.buying_power),
    }


def to_dict(f: LiveFacts) -> dict[str, Any]:
    """The live section as JSON (`live.json`, and `run.json`'s `live`): decimals as strings."""
    return {
        "mode": f.mode,
        "broker": f.broker,
        "reconciled": f.reconciled,
        "findings": f.findings,
        "equity": f.equity,
        "account": account_to_dict(f.account),
        "positions": [
            {"symbol": p.symbol, "quantity": str(p.quantity), "avg_price": str(p.avg_price),
             "stop": _dec(p.stop_loss), "target": _dec(p.take_profit)}
            for p in f.positions
        ],
        "orders": [
            {"client_order_id": o.client_order_id, "leg": o.intent.leg.value, "symbol": o.intent.symbol,
             "side": o.intent.side.value, "type": o.intent.order_type.value, "quantity": str(o.quantity),
             "state": o.state.value, "filled": str(o.filled_quantity), "broker_order_id": o.broker_order_id}
            for o in f.orders
        ],
        "fills": [
            {"client_order_id": x.client_order_id, "symbol": x.symbol, "side": x.side.value,
             "quantity": str(x.quantity), "price": str(x.price), "ts": x.ts.isoformat()}
            for x in f.fills
        ],
        "outcomes": f.outcomes,
        "shadow_intents": f.shadow_intents,
        "exits": f.exits,
        "book_exits": f.book_exits,
        "universe": f.universe,
        "rollout": f.rollout,
        "rollout_state": f.rollout_state,
        "live_vs_paper": live_vs_paper(f.fills, f.twin_fills) if f.mode == "live" else None,
    }  # fmt: skip


def _book_exits(f: LiveFacts) -> list[str]:
    rows = [
        [x["symbol"], x["reason"], x.get("quantity", ""), x.get("price", ""), x["state"]]
        for x in f.book_exits
    ]
    return _table(["symbol", "reason", "qty", "price", "state"], rows)


def render_markdown(f: LiveFacts) -> str:
    d = to_dict(f)
    lines = [f"## {f.mode.capitalize()} at {f.broker}", ""]
    lines.append(
        "Reconciled with the broker: " + ("everything explained" if f.reconciled else "NOT explained")
    )
    lines += [f"- {x}" for x in f.findings]
    if f.account is not None:
        a = f.account
        lines.append(
            f"Broker account: equity {a.equity} {a.currency}, available funds {a.available_funds}, "
            f"margin used {a.margin_used} (sizes and risk checks use these figures)"
        )
    elif f.equity:
        lines.append(f"Broker account equity: {f.equity}")
    lines += [""] + (["Small-size rollout: " + "; ".join(f.rollout), ""] if f.rollout else [])
    if f.mode == "shadow":
        lines += ["### What shadow would have sent (nothing was transmitted)", ""]
        lines += _table(
            ["symbol", "side", "qty", "stop", "target", "live price", "what-if"],
            [
                [i["symbol"], i["side"], i["quantity"], i["stop"], i["target"], i["live_price"], i["what_if"]]
                for i in f.shadow_intents
            ],
        )
        lines += ["", "### Shadow book strategy exits (nothing was transmitted)", "", *_book_exits(f)]
        return "\n".join(lines) + "\n"
    lines += ["### Live positions", ""]
    lines += _table(
        ["symbol", "qty", "avg price", "stop", "target"],
        [[p["symbol"], p["quantity"], p["avg_price"], p["stop"], p["target"]] for p in d["positions"]],
    )
    lines += ["", "### Strategy exits (reduce-only)", ""]
    lines += _table(
        ["symbol", "reason", "qty", "state"],
        [[x["symbol"], x["reason"], x.get("quantity", ""), x.get("error") or x["state"]] for x in f.exits],
    )
    lines += ["", "### Paper twin strategy exits", "", *_book_exits(f)]
    lines += ["", "### Live orders", ""]
    lines += _table(
        ["symbol", "leg", "side", "type", "qty", "state", "filled"],
        [[o["symbol"], o["leg"], o["side"], o["type"], o["quantity"], o["state"], o["filled"]]
         for o in d["orders"]],
    )  # fmt: skip
    lines += ["", "### Live fills this run", ""]
    lines += _table(
        ["symbol", "side", "qty", "price", "time"],
        [[x["symbol"], x["side"], x["quantity"], x["price"], x["ts"]] for x in d["fills"]],
    )
    cmp = d["live_vs_paper"]
    lines += ["", "### Live vs paper", ""]
    lines += _table(
        ["symbol", "side", "live qty", "paper qty", "live fill", "model price", "slippage bp"],
        [[r["symbol"], r["side"], r["live_qty"], r["paper_qty"], r["live_price"], r["model_price"],
          r["slippage_bp"]] for r in cmp["pairs"]],
    )  # fmt: skip
    lines += [
        "",
        f"Filled live only: {', '.join(cmp['live_only']) or 'none'}",
        f"Filled on paper only: {', '.join(cmp['paper_only']) or 'none'}",
        f"PnL gap (model − live, from fill prices): {cmp['pnl_gap']}",
    ]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a file


def write_live_section(report_dir: Path, facts: LiveFacts) -> str:
    """Write `live.json`, add it to `run.json` as `live`, append the section to `report.md` /
    `report.html`; returns the markdown."""
    md = render_markdown(facts)
    doc = to_dict(facts)
    _write(report_dir / "live.json", json.dumps(doc, indent=2, default=str))
    run_json = report_dir / "run.json"
    if run_json.exists():
        run = json.loads(run_json.read_text(encoding="utf-8"))
        run["live"] = doc
        _write(run_json, json.dumps(run, indent=2, default=str) + "\n")
    md_path = report_dir / "report.md"
    if md_path.exists():
        _write(md_path, md_path.read_text() + "\n" + md)  # never in place: a full disk would empty it
    html_path = report_dir / "report.html"
    if html_path.exists():
        page = html_path.read_text()
        block = f'<section id="live"><pre>{html.escape(md)}</pre></section>'
        page = page.replace("</body>", block + "</body>", 1) if "</body>" in page else page + block
        _write(html_path, page)
    return md
