"""AIAnalyst against a local fake Gemini server that receives what the real google-genai SDK sends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from joe.config.schema import AIConfig
from joe.reporting.ai_analyst import AIAnalyst, build_prompt, build_trade_prompt, prompt_facts
from joe.reporting.context import ReportContext, SignalFacts
from joe.reporting.generator import ReportGenerator
from joe.reporting.summary import AISummary, rule_based_summary

from .fakes import FAKE_GEMINI_KEY, FakeGemini, Reply, gemini_error, gemini_response


@pytest.fixture
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


def analyst(server: FakeGemini, **cfg: object) -> AIAnalyst:
    return AIAnalyst(AIConfig(**{"timeout_s": 5.0, **cfg}), FAKE_GEMINI_KEY, server.base_url)


async def test_success_sends_the_real_sdk_request(gemini: FakeGemini, ctx: ReportContext) -> None:
    a = analyst(gemini, model="gemini-2.5-flash", temperature=0.3, max_output_tokens=777)
    summary = await a.summarize(ctx)
    assert summary.source == "gemini"
    assert summary.model == "gemini-2.5-flash"
    assert summary.error is None
    assert summary.text == gemini.answer
    assert summary.label == "AI-generated (Gemini gemini-2.5-flash)"
    [req] = gemini.requests
    assert req.method == "POST"
    assert FakeGemini.PATH.match(req.path)["model"] == "gemini-2.5-flash"  # type: ignore[index]
    assert req.headers["x-goog-api-key"] == FAKE_GEMINI_KEY
    body = req.json()
    assert body["generationConfig"] == {"temperature": 0.3, "maxOutputTokens": 777}
    assert body["contents"][0]["parts"][0]["text"] == build_prompt(ctx)


async def test_trade_analysis(gemini: FakeGemini, ctx: ReportContext) -> None:
    gemini.enqueue(Reply(200, gemini_response("Clean breakout; stop below the base.")))
    note = await analyst(gemini).analyse_trade(ctx.signals[0])
    assert (note.source, note.text) == ("gemini", "Clean breakout; stop below the base.")
    assert gemini.requests[0].json()["contents"][0]["parts"][0]["text"] == build_trade_prompt(ctx.signals[0])


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(429, gemini_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded")), "HTTP 429"),
        (Reply(500, gemini_error(500, "INTERNAL", "An internal error has occurred")), "HTTP 500"),
        (Reply(503, gemini_error(503, "UNAVAILABLE", "overloaded")), "HTTP 503"),
        (Reply(200, body=b"{this is not json"), "Gemini call failed"),
        (Reply(200, {"candidates": []}), "empty answer"),
        (
            Reply(200, {"candidates": [{"content": {"parts": []}, "finishReason": "MAX_TOKENS"}]}),
            "empty answer",
        ),
        (Reply(200, {"candidates": "nonsense"}), ""),
        (Reply(200, drop=True), "Gemini call failed"),
    ],
)
async def test_errors_fall_back_to_rule_based_after_one_attempt(
    gemini: FakeGemini, ctx: ReportContext, reply: Reply, reason: str
) -> None:
    gemini.enqueue(reply)
    summary = await analyst(gemini).summarize(ctx)
    assert summary.source == "rule-based"
    assert summary.error is not None and reason in summary.error
    assert FAKE_GEMINI_KEY not in summary.error
    assert summary.text == rule_based_summary(ctx, "x").text
    assert summary.label.startswith("Rule-based summary (AI unavailable: ")
    assert len(gemini.requests) == 1  # SDK retries are off: a 429/500 falls back at once


async def test_timeout_falls_back(gemini: FakeGemini, ctx: ReportContext) -> None:
    gemini.enqueue(Reply(200, gemini_response("too late"), delay_s=30))
    summary = await analyst(gemini, timeout_s=0.3).summarize(ctx)
    assert summary.source == "rule-based"
    assert summary.error is not None and "timed out" in summary.error


async def test_no_key_or_disabled_never_calls_out(gemini: FakeGemini, ctx: ReportContext) -> None:
    no_key = await AIAnalyst(AIConfig(), None, gemini.base_url).summarize(ctx)
    assert (no_key.source, no_key.error) == ("rule-based", "no GEMINI_API_KEY set")
    off = await AIAnalyst(AIConfig(enabled=False), FAKE_GEMINI_KEY, gemini.base_url).analyse_trade(
        ctx.signals[0]
    )
    assert (off.source, off.error) == ("rule-based", "AI disabled in config")
    assert gemini.requests == []
    assert FAKE_GEMINI_KEY not in repr(AIAnalyst(AIConfig(), FAKE_GEMINI_KEY))


async def test_unreachable_server_falls_back(ctx: ReportContext) -> None:
    with FakeGemini() as server:
        url = server.base_url
    summary = await AIAnalyst(AIConfig(timeout_s=2), FAKE_GEMINI_KEY, url).summarize(ctx)
    assert summary.source == "rule-based" and summary.error


def test_prompt_is_facts_only(ctx: ReportContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_GEMINI_KEY)
    prompt = build_prompt(ctx)
    assert prompt == build_prompt(ctx)  # deterministic
    assert FAKE_GEMINI_KEY not in prompt
    facts = json.loads(prompt.split("FACTS (JSON):\n", 1)[1])
    assert facts == json.loads(json.dumps(prompt_facts(ctx)))
    assert set(facts) == {
        "as_of",
        "mode",
        "data_source",
        "regime",
        "top_scores",
        "signals",
        "positions",
        "fills",
        "account",
        "warnings",
    }
    assert [s["symbol"] for s in facts["signals"]] == [sf.signal.symbol for sf in ctx.signals]
    assert facts["regime"]["label"] == "bull"
    # Only facts: no run id, no broker order ids, nothing from the environment.
    assert ctx.run_id not in prompt
    assert all("fill_id" not in f for f in facts["fills"])


def test_prompt_changes_with_the_facts(ctx: ReportContext) -> None:
    other = replace(ctx, regime=replace(ctx.regime, label="bear", stressed=True))
    assert build_prompt(other) != build_prompt(ctx)
    assert '"label": "bear"' in build_prompt(other)


async def test_summary_is_stored_beside_the_report(
    gemini: FakeGemini, ctx: ReportContext, tmp_path: Path
) -> None:
    summary = await analyst(gemini).summarize(ctx)
    paths = ReportGenerator(tmp_path).write(ctx, summary)
    text = paths.ai_summary.read_text()
    assert "> AI-generated (Gemini gemini-2.5-flash)" in text and gemini.answer in text
    assert FAKE_GEMINI_KEY not in text
    assert json.loads(paths.json.read_text())["ai_summary"]["source"] == "gemini"


async def test_rule_based_output_is_labelled(ctx: ReportContext, tmp_path: Path) -> None:
    summary = await AIAnalyst(AIConfig(), None).summarize(ctx)
    text = ReportGenerator(tmp_path).write(ctx, summary).ai_summary.read_text()
    assert "> Rule-based summary (AI unavailable: no GEMINI_API_KEY set)" in text
    assert "Market regime: bull (confidence 72%)" in text
    assert "1 vetoed: JPM (grade below minimum C)" in text


def _with_executions(ctx: ReportContext, executions: list[str]) -> ReportContext:
    signals = [replace(sf, execution=e) for sf, e in zip(ctx.signals, executions, strict=False)]
    return replace(ctx, signals=signals + list(ctx.signals[len(signals) :]))


async def test_trade_notes_cover_opened_trades_only(gemini: FakeGemini, ctx: ReportContext) -> None:
    ctx = _with_executions(ctx, ["opened 10 @ 101.5", "rejected: buying power exceeded", "opened 3 @ 7", ""])
    notes = await analyst(gemini).analyse_trades(ctx.signals)
    assert [n.signal for n in notes] == [ctx.signals[0], ctx.signals[2]]
    assert all(n.note.source == "gemini" and n.note.text == gemini.answer for n in notes)
    prompts = sorted(r.json()["contents"][0]["parts"][0]["text"] for r in gemini.requests)
    assert prompts == sorted(build_trade_prompt(sf) for sf in (ctx.signals[0], ctx.signals[2]))


async def test_trade_notes_are_capped_and_can_be_turned_off(gemini: FakeGemini, ctx: ReportContext) -> None:
    ctx = _with_executions(ctx, [f"opened {i + 1} @ 10" for i in range(len(ctx.signals))])
    assert len(ctx.signals) > 2
    capped = await analyst(gemini, trade_notes=2).analyse_trades(ctx.signals)
    assert [n.signal for n in capped] == list(ctx.signals[:2])
    assert len(gemini.requests) == 2
    assert await analyst(gemini, trade_notes=0).analyse_trades(ctx.signals) == []
    assert len(gemini.requests) == 2


async def test_a_failed_trade_note_falls_back_alone(
    gemini: FakeGemini, ctx: ReportContext, tmp_path: Path
) -> None:
    ctx = _with_executions(ctx, ["opened 10 @ 101.5", "opened 3 @ 7", "opened 1 @ 2"])
    gemini.enqueue(Reply(500, gemini_error(500, "INTERNAL", "An internal error has occurred")))
    notes = await analyst(gemini).analyse_trades(ctx.signals)
    assert sorted(n.note.source for n in notes) == ["gemini", "gemini", "rule-based"]
    paths = ReportGenerator(tmp_path).write(ctx, trade_notes=notes)
    md = paths.ai_trades.read_text()
    assert md.count("\n## ") == 3
    assert md.count("> AI-generated (Gemini gemini-2.5-flash)") == 2
    assert md.count("> Rule-based summary (AI unavailable: Gemini HTTP 500") == 1
    assert FAKE_GEMINI_KEY not in md
    ReportGenerator(tmp_path).rerender(paths.dir)  # re-rendering keeps the notes as they were
    assert paths.ai_trades.read_text() == md


async def test_trade_notes_keep_at_most_four_calls_in_flight(
    ctx: ReportContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _with_executions(ctx, [f"opened {i + 1} @ 10" for i in range(len(ctx.signals))])
    signals = list(ctx.signals) * 3  # 18 opened trades, under the cap of 20 below
    a = AIAnalyst(AIConfig(trade_notes=20), FAKE_GEMINI_KEY, "http://127.0.0.1:9")
    in_flight = peak = 0

    async def slow_note(sf: SignalFacts) -> AISummary:  # stands in for one Gemini call
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return AISummary(text=sf.signal.symbol, source="gemini", model="m")

    monkeypatch.setattr(a, "analyse_trade", slow_note)
    notes = await a.analyse_trades(signals)
    assert [n.note.text for n in notes] == [sf.signal.symbol for sf in signals]  # in the trades' order
    assert peak == 4


def test_the_rule_based_summary_says_what_happened_to_each_signal_that_passed_risk(
    ctx: ReportContext,
) -> None:
    """Hostile review 2026-12-02: a shadow run before the open listed "5 signal(s) passed risk:" with their
    entries, stops and targets, while the RiskGate had denied every one (market_closed) and nothing traded."""
    active = [sf for sf in ctx.signals if not sf.vetoed]
    denied = "accepted; denied: market_closed: AAPL market closed at 2026-12-02T11:13+00:00"
    signals = [replace(sf, execution=denied) if not sf.vetoed else sf for sf in ctx.signals]
    text = rule_based_summary(replace(ctx, signals=signals), "x").text
    assert f"{len(active)} signal(s) passed risk, 0 opened:" in text
    assert text.count(f" — {denied}") == len(active)
    opened = [replace(sf, execution="opened 10 @ 100.00") if not sf.vetoed else sf for sf in ctx.signals]
    assert (
        f"{len(active)} signal(s) passed risk, {len(active)} opened:"
        in rule_based_summary(replace(ctx, signals=opened), "x").text
    )
