"""`AIAnalyst`: a daily summary and per-trade notes through Google Gemini (google-genai SDK).

The prompt is built only from the run's structured facts (`build_prompt` is pure and holds no
secret). With no key, AI disabled, no network, a timeout, an HTTP error or a malformed answer,
the analyst returns the deterministic rule-based summary, labelled as such, and never raises:
a report or a run must never fail or wait because of the AI. The SDK's own retries are turned
off (one attempt) so a 429/500 falls back at once, and the timeout is enforced twice (SDK
HTTP timeout and `asyncio.wait_for`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import structlog

from joe.config.schema import AIConfig
from joe.reporting.context import ReportContext, SignalFacts
from joe.reporting.facts import _plain, dec, fill_to_json, position_to_json
from joe.reporting.runjson import reward_risk
from joe.reporting.summary import AISummary, TradeNote, rule_based_summary, rule_based_trade_analysis

log = structlog.get_logger(__name__)

# Gemini calls in flight at once for per-trade notes: enough to finish quickly, few enough for quotas.
_TRADE_NOTE_CONCURRENCY = 4

SYSTEM_INSTRUCTION = (
    "You are the analyst of an automated trading system. Write for the trader who runs it. "
    "Use only the facts in the JSON you are given; never invent prices, news or positions. "
    "Be concise and concrete; point out risks and anything unusual; no generic disclaimers."
)


def _signal_facts(sf: SignalFacts) -> dict[str, Any]:
    s = sf.signal
    return {
        "symbol": s.symbol,
        "strategy": s.strategy,
        "direction": s.direction.value,
        "entry": dec(s.entry),
        "stop_loss": dec(s.stop_loss),
        "take_profit": dec(s.take_profit),
        "reward_risk": reward_risk(sf),
        "confidence": round(float(s.confidence), 4),
        "score": s.score,
        "reason": s.reason,
        "risk_grade": sf.risk_grade,
        "risk_dimensions": _plain(sf.risk_dimensions),
        "vetoed": sf.vetoed,
        "veto_reason": sf.veto_reason,
        "quantity": dec(sf.quantity if sf.quantity is not None else s.quantity),
    }


def prompt_facts(ctx: ReportContext) -> dict[str, Any]:
    """The facts the AI may see: regime, scores, signals, positions, fills, account (no ids, no secrets)."""
    return {
        "as_of": ctx.as_of.isoformat(),
        "mode": ctx.mode,
        "data_source": ctx.source,
        "regime": {
            "label": ctx.regime.label,
            "confidence": ctx.regime.confidence,
            "stressed": ctx.regime.stressed,
            "evidence": _plain(ctx.regime.evidence),
        },
        "top_scores": [
            {
                "symbol": s.symbol,
                "name": s.name,
                "total": s.total,
                "components": _plain(s.components),
                "scans": list(s.scans),
            }
            for s in ctx.top_scores[:15]
        ],
        "signals": [_signal_facts(sf) for sf in ctx.signals],
        "positions": [position_to_json(p) for p in ctx.positions],
        "fills": [
            {k: v for k, v in fill_to_json(f).items() if k not in ("fill_id", "broker_order_id")}
            for f in ctx.fills
        ],
        "account": {k: _plain(v) for k, v in ctx.account.items()},
        "warnings": list(ctx.warnings),
    }


def build_prompt(ctx: ReportContext) -> str:
    """The daily-summary prompt: a task line and the run's facts as JSON (deterministic)."""
    facts = json.dumps(prompt_facts(ctx), indent=1, sort_keys=True)
    return (
        f"{SYSTEM_INSTRUCTION}\n\n"
        "Write a daily summary of this trading run in at most 250 words, as Markdown: the market regime "
        "and what it implies, the signals taken and vetoed and why, open positions and P&L, and what to "
        f"watch next session.\n\nFACTS (JSON):\n{facts}\n"
    )


def build_trade_prompt(sf: SignalFacts) -> str:
    """The per-trade prompt: the signal's facts as JSON (deterministic)."""
    facts = json.dumps(_signal_facts(sf), indent=1, sort_keys=True)
    return (
        f"{SYSTEM_INSTRUCTION}\n\n"
        "Assess this trade signal in at most 120 words, as Markdown: the setup, whether the stop and "
        f"target are sensible for the risk dimensions, and the main risk.\n\nFACTS (JSON):\n{facts}\n"
    )


class AIAnalyst:
    """Gemini-backed analyst with a rule-based fallback; every method returns, none raises."""

    def __init__(self, config: AIConfig, api_key: str | None, base_url: str | None = None) -> None:
        self.config = config
        self._api_key = api_key or None
        self._base_url = base_url or None

    def __repr__(self) -> str:  # never show the key
        return f"AIAnalyst(model={self.config.model!r}, enabled={self.available})"

    @property
    def available(self) -> bool:
        """True when a Gemini call will be attempted (enabled and a key is set)."""
        return self.config.enabled and self._api_key is not None

    def _unavailable_reason(self) -> str:
        return "AI disabled in config" if not self.config.enabled else "no GEMINI_API_KEY set"

    async def summarize(self, ctx: ReportContext) -> AISummary:
        """Daily summary of a run."""
        if not self.available:
            return rule_based_summary(ctx, self._unavailable_reason())
        text, error = await self._generate(build_prompt(ctx))
        if text is None:
            return rule_based_summary(ctx, error or "unknown error")
        return AISummary(text=text, source="gemini", model=self.config.model)

    async def analyse_trade(self, signal_facts: SignalFacts) -> AISummary:
        """Analysis of one signal/trade."""
        if not self.available:
            return rule_based_trade_analysis(signal_facts, self._unavailable_reason())
        text, error = await self._generate(build_trade_prompt(signal_facts))
        if text is None:
            return rule_based_trade_analysis(signal_facts, error or "unknown error")
        return AISummary(text=text, source="gemini", model=self.config.model)

    async def analyse_trades(self, signals: Sequence[SignalFacts]) -> list[TradeNote]:
        """Notes for the trades the run opened (at most `config.trade_notes`), a few calls at a time.

        Runs after trading and each call is bounded by the timeout, so it never delays an order.
        """
        opened = [sf for sf in signals if sf.opened][: self.config.trade_notes]
        gate = asyncio.Semaphore(_TRADE_NOTE_CONCURRENCY)

        async def one(sf: SignalFacts) -> TradeNote:
            async with gate:
                return TradeNote(sf, await self.analyse_trade(sf))

        return list(await asyncio.gather(*(one(sf) for sf in opened)))

    def _scrub(self, message: str) -> str:
        if self._api_key:
            message = message.replace(self._api_key, "***")
        return message[:300]

    async def _generate(self, prompt: str) -> tuple[str | None, str | None]:
        """(text, None) on success, (None, reason) on any failure. Never raises."""
        timeout = self.config.timeout_s
        client: Any = None
        try:
            from google import genai
            from google.genai import types

            http_options = types.HttpOptions(
                base_url=self._base_url,
                timeout=int(timeout * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
            )
            client = genai.Client(api_key=self._api_key, http_options=http_options)
            config = types.GenerateContentConfig(
                temperature=self.config.temperature,
                max_output_tokens=self.config.max_output_tokens,
            )
            response = await asyncio.wait_for(
                client.aio.models.generate_content(model=self.config.model, contents=prompt, config=config),
                timeout=timeout,
            )
            text = response.text
            if not text or not text.strip():
                reason = "empty answer from Gemini"
                finish = _finish_reason(response)
                return None, f"{reason} (finish reason {finish})" if finish else reason
            return text.strip(), None
        except TimeoutError:
            reason = f"Gemini timed out after {timeout:g}s"
        except Exception as exc:  # any SDK/network/parse error falls back; the run goes on
            reason = self._scrub(_describe(exc))
        finally:
            if client is not None:
                try:
                    await client.aio.aclose()
                except Exception:
                    pass
        log.warning("ai.fallback", reason=reason, model=self.config.model)
        return None, reason


def _finish_reason(response: Any) -> str | None:
    try:
        return str(response.candidates[0].finish_reason)
    except (AttributeError, IndexError, TypeError):
        return None


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    status = getattr(exc, "status", None)
    if isinstance(code, int):
        return f"Gemini HTTP {code}" + (f" {status}" if status else "")
    return f"Gemini call failed: {type(exc).__name__}: {exc}"
