"""`create_app`: the dashboard (server-rendered pages), its JSON API under ``/api/`` (OpenAPI schema at
``/openapi.json``), ``/metrics`` (Prometheus) and ``/health``.

Every route but ``/health``, ``/login`` and the chart library needs the token (`joe.web.auth`); the
controls call `joe.safety.operator` through `joe.web.controls`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from joe import __version__
from joe.core.logging import get_logger
from joe.core.order import OrderState
from joe.metrics import AuditLatency, health, metrics_registry
from joe.runtime import read_model as data
from joe.safety.control import SafetyContext
from joe.web.auth import COOKIE, METRICS_PATH, Caller, TokenAuth
from joe.web.controls import Action, ControlRefused, ControlRequest, control_problem, perform

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime

TEMPLATES = Path(__file__).with_name("templates")
# The API's filters are checked (a typo is a 422 naming the parameter, not an empty list that reads as
# "no orders"); the pages' filter forms stay lenient (an empty field means "all").
ModeFilter = Annotated[Literal["paper", "live", "shadow"] | None, Query(description="paper, live or shadow")]
SymbolFilter = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9._:/ -]*$")]
STATE_NAMES = ", ".join(m.lower() for m in OrderState.__members__)
STATE_HELP = f"'working' (every non-final state) or one of: {STATE_NAMES}"
T = TypeVar("T")
PLOTLY_PATH = "/static/plotly.min.js"
OPEN_PATHS = frozenset({"/health", "/login", PLOTLY_PATH})


SECURITY_HEADERS = {
    # Framed by no other site (the controls page cannot be clickjacked; the report page frames its own
    # /report/html), never cached (positions, PnL and the CSRF value stay out of shared caches and the
    # back button), no referrer to other sites, no sniffing.
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "frame-ancestors 'self'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def harden(response: Response) -> Response:
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    return response


def plotly_js() -> Path:
    """plotly.min.js as the plotly package ships it (served locally: the dashboard works offline)."""
    import plotly

    return Path(plotly.__file__).with_name("package_data") / "plotly.min.js"


log = get_logger("joe.web")


def _metrics_token(rt: Runtime) -> str | None:
    """The scrape-only token of `rt`'s data folder, created on first start; None (said in the log)
    when it cannot be made — /metrics then takes the web token only."""
    from joe.web.auth import TokenFileError, load_or_create_metrics_token

    try:
        return load_or_create_metrics_token(rt.data_dir)[0]
    except (OSError, TokenFileError) as exc:
        log.warning("web.metrics_token_unavailable", error=str(exc))
        return None


def create_app(
    rt: Runtime,
    token: str,
    ctx: SafetyContext | None = None,
    on_control: Callable[[], None] | None = None,
) -> FastAPI:
    """The app over `rt` (and its `ctx`, shared when the daemon serves it). `on_control` runs after
    every control action (the daemon: re-read the trading state now, not at the next heartbeat).

    Reads run in a worker thread (the store is thread-safe): an audit chain check or a large order
    list never stalls the event loop, which in ``joe daemon --web`` is the one that handles quotes."""
    ctx = ctx or SafetyContext.from_runtime(rt)
    auth = TokenAuth(token, rt.audit, metrics_token=_metrics_token(rt))
    latency = AuditLatency()
    latency.instrument(rt.audit)
    registry = metrics_registry(rt.store, latency)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    app = FastAPI(
        title="Joe",
        version=__version__,
        description="Joe's dashboard API: status, positions, orders, fills, equity, audit tail and the kill "
        "switch. Every call needs the token (`Authorization: Bearer <token>`, from `<data dir>/web-token`).",
        docs_url=None,  # Swagger UI loads its JS from a CDN; the schema itself is at /openapi.json
        redoc_url=None,
    )
    app.state.auth = auth  # the token check, reachable for its clock in tests

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path in OPEN_PATHS:
            response = await call_next(request)
            if path == PLOTLY_PATH:  # the chart library is public and large: cacheable
                response.headers["Cache-Control"] = "public, max-age=86400"
            return harden(response)
        caller = auth.caller(request)
        if caller is None:
            if path.startswith(("/api", "/metrics", "/openapi")):
                return harden(
                    JSONResponse(
                        {"detail": "a valid token is required"},
                        status_code=401,
                        headers={"WWW-Authenticate": "Bearer"},
                    )
                )
            return harden(RedirectResponse("/login", status_code=303))
        if caller.via == "metrics" and not (path == METRICS_PATH and request.method in ("GET", "HEAD")):
            # The scrape-only token reads /metrics and nothing else: no page, no API, no control.
            auth.wrong(request, via="metrics")
            return harden(
                JSONResponse({"detail": "the metrics token only reads GET /metrics"}, status_code=403)
            )
        request.state.caller = caller
        return harden(await call_next(request))

    async def read(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(fn, *args, **kwargs)

    def controlled() -> None:
        if on_control is not None:
            try:
                on_control()
            except Exception:  # the action is done and audited; a failing hook must not hide it
                pass

    def page(request: Request, name: str, **ctx_vars: Any) -> HTMLResponse:
        st = ctx.states.current()
        base = {
            "mode": rt.mode,
            "state": st.to_json(),
            "csrf": auth.csrf,
            "active": name,
            "version": __version__,
        }
        return templates.TemplateResponse(request, f"{name}.html", {**base, **ctx_vars})

    # -- open ----------------------------------------------------------------------------------------

    @app.get(
        "/health", tags=["ops"], summary="Liveness: the store answers and the daemon's heartbeat is fresh"
    )
    async def get_health() -> JSONResponse:
        code, body = await read(health, rt.store)
        return JSONResponse(body, status_code=code)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    async def plotly_bundle() -> FileResponse:
        return FileResponse(plotly_js(), media_type="application/javascript")

    @app.get("/login", include_in_schema=False)
    async def login_form(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "login.html", {"error": None, "mode": rt.mode})

    @app.post("/login", include_in_schema=False)
    async def login(request: Request, token: Annotated[str, Form()]) -> Response:
        if not auth.matches(token.strip()):
            auth.wrong(request, via="login")
            return templates.TemplateResponse(
                request, "login.html", {"error": "wrong token", "mode": rt.mode}, status_code=401
            )
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", path="/")
        return resp

    @app.post("/logout", include_in_schema=False)
    async def logout() -> Response:
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # -- metrics -------------------------------------------------------------------------------------

    @app.get("/metrics", tags=["ops"], summary="Prometheus text exposition")
    async def metrics() -> Response:
        return Response(await read(generate_latest, registry), media_type=CONTENT_TYPE_LATEST)

    # -- JSON API ------------------------------------------------------------------------------------

    @app.get(
        "/api/status", tags=["api"], summary="joe status: mode, trading state, breakers, margin, PnL, daemon"
    )
    async def api_status() -> dict[str, Any]:
        return await read(data.overview, rt, ctx)

    @app.get("/api/positions", tags=["api"], summary="Open positions with their stop and its distance")
    async def api_positions() -> dict[str, Any]:
        return await read(data.positions, rt, ctx)

    @app.get(
        "/api/orders", tags=["api"], summary="Orders, newest first (filters: mode, state|working, symbol)"
    )
    async def api_orders(
        mode: ModeFilter = None,
        state: Annotated[str | None, Query(max_length=32, description=STATE_HELP)] = None,
        symbol: SymbolFilter = None,
        broker: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z0-9_-]*$")] = None,
    ) -> list[dict[str, Any]]:
        if state and state.lower() != "working" and state.upper() not in OrderState.__members__:
            raise HTTPException(422, f"state must be 'working' or one of {STATE_NAMES}, not {state!r}")
        return await read(data.orders, rt, mode=mode, state=state, symbol=symbol, broker=broker)

    @app.get("/api/fills", tags=["api"], summary="Fills, newest first (filters: mode, symbol)")
    async def api_fills(mode: ModeFilter = None, symbol: SymbolFilter = None) -> list[dict[str, Any]]:
        return await read(data.fills, rt, mode=mode, symbol=symbol)

    @app.get("/api/equity", tags=["api"], summary="Equity curve and drawdown (%) of a mode")
    async def api_equity(mode: ModeFilter = None) -> dict[str, Any]:
        return await read(data.equity, rt, mode)

    @app.get("/api/audit", tags=["api"], summary="The newest audit records, newest first")
    async def api_audit(n: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
        return await read(data.audit_tail, rt, n)

    @app.get("/api/report", tags=["api"], summary="The latest run: id, summary, report folder")
    async def api_report() -> dict[str, Any]:
        run = await read(data.latest_run, rt)
        if run is None:
            raise HTTPException(404, "no finished run yet")
        return run

    @app.post(
        "/api/control/{action}", tags=["api"], summary="halt | reduce | flatten | resume (typed confirm)"
    )
    async def api_control(action: Action, body: ControlRequest, request: Request) -> JSONResponse:
        caller: Caller = request.state.caller
        if not auth.csrf_ok(caller, request):
            return JSONResponse({"detail": "cookie-authenticated requests need the X-Joe-CSRF header"}, 403)
        try:
            out = await perform(rt, ctx, action, body, caller.by)
        except ControlRefused as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        finally:
            controlled()
        code = {0: 200, 1: 502, 3: 423}.get(int(out.get("exit_code", 0)), 200)
        return JSONResponse(out, status_code=code)

    # -- pages ---------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def overview_page(request: Request) -> HTMLResponse:
        return page(request, "overview", s=await read(data.overview, rt, ctx))

    @app.get("/positions", response_class=HTMLResponse, include_in_schema=False)
    async def positions_page(request: Request) -> HTMLResponse:
        return page(request, "positions", p=await read(data.positions, rt, ctx))

    @app.get("/orders", response_class=HTMLResponse, include_in_schema=False)
    async def orders_page(
        request: Request, mode: str = "", state: str = "", symbol: str = ""
    ) -> HTMLResponse:
        f = {"mode": mode, "state": state, "symbol": symbol}
        return page(
            request,
            "orders",
            f=f,
            orders=await read(data.orders, rt, mode=mode, state=state, symbol=symbol),
            fills=await read(data.fills, rt, mode=mode, symbol=symbol),
        )

    @app.get("/chart", response_class=HTMLResponse, include_in_schema=False)
    async def chart_page(request: Request, mode: str = "") -> HTMLResponse:
        return page(request, "chart", eq=await read(data.equity, rt, mode or None))

    @app.get("/report", response_class=HTMLResponse, include_in_schema=False)
    async def report_page(request: Request) -> HTMLResponse:
        run, html = await read(data.latest_run, rt), await read(data.report_html, rt)
        return page(request, "report", run=run, has_html=html is not None)

    @app.get("/report/html", include_in_schema=False)
    async def report_file() -> FileResponse:
        path = await read(data.report_html, rt)
        if path is None:
            raise HTTPException(404, "no report yet")
        return FileResponse(path, media_type="text/html")

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    async def audit_page(request: Request, n: int = 100) -> HTMLResponse:
        return page(request, "audit", records=await read(data.audit_tail, rt, max(1, min(n, 1000))))

    @app.get("/controls", response_class=HTMLResponse, include_in_schema=False)
    async def controls_page(request: Request) -> HTMLResponse:
        return page(request, "controls", result=None, error=None)

    @app.post("/controls", response_class=HTMLResponse, include_in_schema=False)
    async def controls_post(
        request: Request,
        action: Annotated[Action, Form()],
        reason: Annotated[str, Form()],
        confirm: Annotated[str, Form()],
        csrf: Annotated[str, Form()] = "",
    ) -> HTMLResponse:
        caller: Caller = request.state.caller
        if not auth.csrf_ok(caller, request, form_value=csrf):
            return page(
                request, "controls", result=None, error="refused: the form's CSRF value is missing or wrong"
            )
        try:
            req = ControlRequest(reason=reason, confirm=confirm)  # the API's limits, not bypassed
        except ValidationError as exc:
            return page(request, "controls", result=None, error=f"refused: {control_problem(exc)}")
        try:
            out = await perform(rt, ctx, action, req, caller.by)
        except ControlRefused as exc:
            return page(request, "controls", result=None, error=str(exc))
        finally:
            controlled()
        return page(request, "controls", result=out, error=None)

    return app
