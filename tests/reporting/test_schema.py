"""run.json matches its documented schema (JSON Schema file + pydantic models mirroring it)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from joe.reporting.context import ReportContext
from joe.reporting.generator import ReportGenerator
from joe.reporting.runjson import REPORT_SCHEMA, build_run_json, load_json_schema
from joe.reporting.summary import AISummary

from .sample_context import minimal_context

DecStr = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$")]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "report-schema.md"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class Run(_M):
    run_id: Annotated[str, Field(min_length=1)]
    mode: str
    broker: str
    source: str
    source_description: str
    as_of: date
    started_at: datetime
    finished_at: datetime
    duration_s: Annotated[float, Field(ge=0)]
    stage_timings: dict[str, float]
    price_sources: dict[str, str] = {}  # added compatibly in /1 (broker failover, issue 19)


class RegimeInput(_M):
    name: str
    symbol: str | None
    last_date: date | None
    age_days: int | None
    age_sessions: int | None = None
    stale: bool
    proxy: bool


class Regime(_M):
    label: str
    confidence: float
    stressed: bool
    evidence: dict[str, float | None]
    inputs: list[RegimeInput] = []


class Finding(_M):
    symbol: str
    severity: Literal["error", "warning"]
    check: str
    message: str
    file: str | None
    row: Annotated[int, Field(ge=1)] | None
    date_: date | None = Field(alias="date")


class DataQuality(_M):
    checked: Annotated[int, Field(ge=0)]
    excluded: list[str]
    flagged: list[str]
    findings: list[Finding]


class Score(_M):
    rank: Annotated[int, Field(ge=1)]
    symbol: str
    name: str
    total: float
    components: dict[str, float | None]
    scans: list[str]


class SignalRow(_M):
    signal_id: str
    symbol: str
    strategy: str
    direction: Literal["LONG", "SHORT"]
    entry: DecStr
    stop_loss: DecStr
    take_profit: DecStr
    trailing_distance: DecStr | None
    reward_risk: float | None
    confidence: float
    score: float | None
    reason: str
    as_of: datetime
    risk_grade: str
    risk_dimensions: dict[str, float | None]
    vetoed: bool
    veto_reason: str | None
    quantity: DecStr | None
    execution: str


class PositionRow(_M):
    symbol: str
    direction: Literal["LONG", "SHORT"]
    quantity: DecStr
    avg_price: DecStr
    market_price: DecStr | None
    unrealized_pnl: DecStr
    stop_loss: DecStr | None
    take_profit: DecStr | None
    opened_at: datetime | None
    marked_at: datetime | None


class FillRow(_M):
    fill_id: str
    client_order_id: str
    symbol: str
    side: Literal["BUY", "SELL"]
    quantity: DecStr
    price: DecStr
    ts: datetime
    commission: DecStr
    broker_order_id: str | None


class EquityPoint(_M):
    ts: datetime
    equity: float | None
    cash: float | None


class AIRef(_M):
    source: Literal["gemini", "rule-based"]
    model: str | None
    error: str | None
    file: Literal["ai_summary.md"]


class LiveAccount(_M):
    currency: str
    equity: DecStr
    cash: DecStr
    available_funds: DecStr
    margin_used: DecStr
    excess_liquidity: DecStr | None
    buying_power: DecStr | None


class LivePosition(_M):
    symbol: str
    quantity: DecStr
    avg_price: DecStr
    stop: DecStr | None
    target: DecStr | None


class LiveSection(_M):
    mode: Literal["live", "shadow"]
    broker: str
    reconciled: bool
    findings: list[str]
    equity: str
    account: LiveAccount | None
    positions: list[LivePosition]
    orders: list[dict[str, Any]]
    fills: list[dict[str, Any]]
    outcomes: list[dict[str, str]]
    shadow_intents: list[dict[str, Any]]
    exits: list[dict[str, str]]
    book_exits: list[dict[str, str]] = []  # optional: absent in reports written before it
    universe: list[str]
    rollout: list[str]
    rollout_state: dict[str, Any] | None
    live_vs_paper: dict[str, Any] | None


class RunJson(_M):
    schema_: Literal["joe.report/1"] = Field(alias="schema")
    generated_at: datetime
    run: Run
    regime: Regime
    top_scores: list[Score]
    signals: list[SignalRow]
    positions: list[PositionRow]
    fills: list[FillRow]
    account: dict[str, DecStr | float | None]
    equity_curve: list[EquityPoint]
    warnings: list[str]
    data_quality: DataQuality | None = None
    live: LiveSection | None = None
    ai_summary: AIRef | None


def _written(tmp_path: Path, ctx: ReportContext) -> dict[str, Any]:
    ai = AISummary("text", "gemini", "gemini-2.5-flash")
    return json.loads(ReportGenerator(tmp_path).write(ctx, ai).json.read_text())  # type: ignore[no-any-return]


def test_run_json_validates_against_pydantic_mirror(tmp_path: Path, ctx: ReportContext) -> None:
    doc = RunJson.model_validate(_written(tmp_path, ctx))
    assert doc.run.run_id == ctx.run_id
    assert len(doc.signals) == len(ctx.signals)
    assert Decimal(doc.signals[0].entry) == ctx.signals[0].signal.entry
    assert doc.signals[0].reward_risk == pytest.approx(2.0, abs=0.01)
    RunJson.model_validate(build_run_json(minimal_context()))


def test_pydantic_mirror_rejects_a_broken_document(tmp_path: Path, ctx: ReportContext) -> None:
    doc = _written(tmp_path, ctx)
    doc["signals"][0]["entry"] = 101.5  # a float where an exact decimal string is required
    with pytest.raises(ValidationError):
        RunJson.model_validate(doc)


def test_json_schema_file_matches_the_mirror() -> None:
    schema = load_json_schema()
    assert schema["properties"]["schema"]["const"] == REPORT_SCHEMA
    required = {f.alias or n for n, f in RunJson.model_fields.items() if f.is_required()}
    assert set(schema["required"]) == required
    props = schema["properties"]
    # Fields added compatibly within joe.report/1 are optional in both the schema and the mirror.
    assert set(props) == {f.alias or n for n in RunJson.model_fields for f in [RunJson.model_fields[n]]}
    pairs: dict[str, type[BaseModel]] = {
        "run": Run,
        "regime": Regime,
        "data_quality": DataQuality,
        "live": LiveSection,
    }
    for name, model in pairs.items():
        fields = {f.alias or n for n, f in model.model_fields.items() if f.is_required()}
        assert set(props[name]["required"]) == fields, name
    assert set(props["regime"]["properties"]["inputs"]["items"]["required"]) == {
        n for n, f in RegimeInput.model_fields.items() if f.is_required()
    }
    finding_fields = {f.alias or n for n, f in Finding.model_fields.items()}
    assert set(props["data_quality"]["properties"]["findings"]["items"]["required"]) == finding_fields
    items: dict[str, type[BaseModel]] = {
        "top_scores": Score,
        "signals": SignalRow,
        "positions": PositionRow,
        "fills": FillRow,
        "equity_curve": EquityPoint,
    }
    for name, item in items.items():
        assert set(props[name]["items"]["required"]) == set(item.model_fields), name


def test_run_json_validates_against_json_schema(tmp_path: Path, ctx: ReportContext) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = load_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert list(validator.iter_errors(_written(tmp_path, ctx))) == []
    assert list(validator.iter_errors(build_run_json(minimal_context()))) == []
    broken = _written(tmp_path, ctx) | {"extra": 1}
    assert list(validator.iter_errors(broken))


def _with_live(tmp_path: Path, ctx: ReportContext) -> dict[str, Any]:
    """A live run's folder: the report, then the live section added by `write_live_section`."""
    from joe.core.models import AccountInfo, Position
    from joe.reporting.live_section import LiveFacts, write_live_section

    paths = ReportGenerator(tmp_path).write(ctx, AISummary("text", "gemini", "gemini-2.5-flash"))
    facts = LiveFacts(
        "live",
        "ibkr",
        reconciled=False,
        findings=["position AAPL: unexplained"],
        positions=[Position("AAPL", Decimal(10), Decimal("101.5"), stop_loss=Decimal(95))],
        account=AccountInfo("DU1", "USD", Decimal("50000.5"), Decimal(40000), Decimal(30000)),
        rollout=["rollout caps ACTIVE"],
        rollout_state={"real_money": True, "active": True, "trades": 0, "days": 0},
    )
    write_live_section(paths.dir, facts)
    return json.loads(paths.json.read_text())  # type: ignore[no-any-return]


def test_live_section_is_in_run_json_and_validates(tmp_path: Path, ctx: ReportContext) -> None:
    """Before: the live section (broker positions, orders, fills, account, rollout, reconciliation
    verdict, live vs twin) was only in live.json and the md/html report, not in run.json."""
    doc = _with_live(tmp_path, ctx)
    live = RunJson.model_validate(doc).live
    assert live is not None and live.reconciled is False and live.findings == ["position AAPL: unexplained"]
    assert live.account is not None and live.account.equity == "50000.5"
    assert live.positions[0].stop == "95" and live.positions[0].target is None
    assert live.rollout_state == {"real_money": True, "active": True, "trades": 0, "days": 0}
    assert live.live_vs_paper == {"pairs": [], "live_only": [], "paper_only": [], "pnl_gap": "0.00"}
    assert "DU1" not in json.dumps(doc["live"])  # the account id stays out of the report
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(
        load_json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert list(validator.iter_errors(doc)) == []


def test_schema_is_documented() -> None:
    text = DOCS.read_text()
    assert REPORT_SCHEMA in text
    for field in RunJson.model_fields:
        assert f"`{field.rstrip('_')}`" in text, field
    for model in (SignalRow, PositionRow, FillRow):
        for field in model.model_fields:
            assert f"`{field}`" in text, field


def test_price_sources_say_which_broker_each_price_came_from_in_every_format(tmp_path: Path) -> None:
    """Broker failover (issue 19): run.json, Markdown and HTML name each instrument's price source."""
    from dataclasses import replace

    from joe.reporting.html_page import render_html
    from joe.reporting.markdown import render_markdown

    ctx = replace(minimal_context(), broker="ibkr",
                  price_sources={"MSFT": "ibkr", "AAPL": "capital (AAPL)", "AMD": "ibkr"})  # fmt: skip
    doc = build_run_json(ctx)
    assert doc["run"]["price_sources"] == {"AAPL": "capital (AAPL)", "AMD": "ibkr", "MSFT": "ibkr"}
    RunJson.model_validate(doc)
    jsonschema = pytest.importorskip("jsonschema")
    assert list(jsonschema.Draft202012Validator(load_json_schema()).iter_errors(doc)) == []
    md = render_markdown(ctx)
    assert "- Prices from ibkr: AMD, MSFT\n- Prices from capital (AAPL): AAPL" in md
    html = render_html(ctx)
    assert "<th>Prices from capital (AAPL)</th><td>AAPL</td>" in html
    assert "<th>Prices from ibkr</th><td>AMD, MSFT</td>" in html
    assert "Prices from" not in render_markdown(minimal_context())  # no prices: no line


def test_a_full_disk_adding_the_live_section_never_empties_the_report(
    tmp_path: Path, ctx: ReportContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hostile review: the live section was appended by rewriting report.md and report.html in place
    (truncate, then write): a full disk or a SIGKILL between the two left the run's report EMPTY, not
    just without its live section. Now each is written beside and renamed (a reader sees old or new)."""
    import errno

    from joe.core.models import AccountInfo
    from joe.reporting.live_section import LiveFacts, write_live_section

    paths = ReportGenerator(tmp_path).write(ctx, AISummary("text", "gemini", "gemini-2.5-flash"))
    md, page = (paths.dir / "report.md").read_text(), (paths.dir / "report.html").read_text()
    assert md and page
    facts = LiveFacts("live", "ibkr", reconciled=True, findings=[], positions=[],
                      account=AccountInfo("DU1", "USD", Decimal(1), Decimal(1), Decimal(1)))  # fmt: skip

    real_write = Path.write_text

    def disk_full(self: Path, *a: Any, **k: Any) -> int:
        if not self.name.startswith("report."):  # live.json and run.json still fit
            return real_write(self, *a, **k)
        with open(self, "w"):  # truncated, as open(..., "w") does, and then no room
            pass
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError):
        write_live_section(paths.dir, facts)
    monkeypatch.undo()
    assert (paths.dir / "report.md").read_text() == md
    assert (paths.dir / "report.html").read_text() == page
