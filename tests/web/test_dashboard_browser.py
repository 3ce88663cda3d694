"""The dashboard end to end, in headless Chromium: `joe web` and `joe run --once` in live mode against
`joe sim ibkr` (separate processes speaking TWS's wire protocol on 127.0.0.1), as a user runs them.

- /metrics parses with prometheus-client's parser and its counters move after the live run;
- the dashboard refuses a browser without the token (and audits a wrong one), loads with it;
- the positions and orders the live run left at the simulator appear on their pages;
- the halt control with its typed confirmation moves the trading state, and the next run's orders are
  refused (the run says so, nothing new reaches the simulator);
- a screenshot of each page is kept under test-artifacts/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon_proc import announced, sim_process
from market_clock import OPEN_MINUTE

JOE = str(Path(sys.executable).with_name("joe"))
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
LIVE_CONFIG = "version: 1\nlive:\n  enabled: true\npipeline:\n  universe_size: 60\nai:\n  enabled: false\n"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
]
KEEP_OUT = ("CAPITAL_", "IBKR_", "TELEGRAM_", "DISCORD_", "GEMINI_", "TRADING_MODE", "JOE_")


def metrics(url: str, token: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def sim_get(control: str, what: str) -> Any:
    return httpx.get(f"{control}/_sim/{what}", timeout=10).json()[what]


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A live desk: the TWS simulator, `joe web` on the same data folder, and one live run."""
    project = tmp_path_factory.mktemp("desk")
    (project / "config").mkdir()
    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    base = {k: v for k, v in os.environ.items() if not k.startswith(KEEP_OUT)}
    with ExitStack() as procs:
        sim = procs.enter_context(sim_process("ibkr", "--control-port", "0", env=base))
        env = {
            **base,
            "JOE_DATA_DIR": str(project / "data"),
            "JOE_CONFIG": str(project / "config/execution.yaml"),
            "TRADING_MODE": "live",
            "JOE_BROKER": "ibkr",
            "IBKR_PORT": str(sim.port),
            "IBKR_ACCOUNT": "DU1234567",
            "IBKR_CLIENT_ID": "7",
            # The run judges market hours at a Tuesday 10:00 New York (the suite's autouse clock does not
            # reach a module fixture, and JOE_ is kept out above): without it, fills would depend on the
            # wall clock.
            "JOE_CLOCK_START": OPEN_MINUTE,
        }
        # `joe web --port 0` prints its URL once its socket listens (joe.web.serve.bind).
        web = procs.enter_context(
            announced(
                [JOE, "web", "--port", "0"],
                r"Joe dashboard on (http://127\.0\.0\.1:\d+)/",
                env=env,
                cwd=project,
            )
        )
        url = web.match.group(1)
        token = (project / "data" / "web-token").read_text().strip()
        before = metrics(url, token)
        run = subprocess.run(
            [JOE, "run", "--once"], cwd=project, env=env, capture_output=True, text=True, timeout=600
        )
        assert run.returncode == 0, run.stderr[-4000:]
        after = metrics(url, token)
        yield {
            "project": project,
            "env": env,
            "url": url,
            "token": token,
            "control": sim.control,
            "before": before,
            "after": after,
            "web": web.proc,
        }


def _v(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.timeout(900)
def test_metrics_counters_move_after_a_live_run(desk: dict[str, Any]) -> None:
    before, after = desk["before"], desk["after"]
    assert _v(before, "joe_fills_total", mode="live", broker="ibkr") == 0
    assert _v(after, "joe_fills_total", mode="live", broker="ibkr") > 0
    assert _v(after, "joe_orders", mode="live", broker="ibkr", state="filled") > 0
    assert (
        _v(after, "joe_orders", mode="live", broker="ibkr", state="accepted") > 0
    )  # the resting stops/targets
    assert _v(after, "joe_order_latency_seconds_count", broker="ibkr", stage="ack") > 0
    assert _v(after, "joe_order_latency_seconds_count", broker="ibkr", stage="fill") > 0
    assert _v(after, "joe_trading_state", state="active") == 1
    health = httpx.get(f"{desk['url']}/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"


def _chromium() -> str | None:
    for name in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(name).exists():
            return name
    return shutil.which("chromium")


@pytest.mark.browser
@pytest.mark.timeout(900)
def test_dashboard_in_headless_chromium(desk: dict[str, Any]) -> None:
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (.ci/run installs the Debian package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, token, control = desk["url"], desk["token"], desk["control"]
    ARTIFACTS.mkdir(exist_ok=True)
    held = {s: q for s, q in sim_get(control, "positions").items() if float(q) != 0}
    at_sim = sim_get(control, "orders")
    assert held and at_sim

    console: list[tuple[str, str]] = []
    page_errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))

            # Refused without the token: pages go to the login form, the API answers 401.
            page.goto(url + "/positions")
            assert page.url.endswith("/login")
            assert page.request.get(url + "/api/status").status == 401
            page.fill("#token", "a-wrong-token-for-the-audit")
            page.click("#login")
            assert "wrong token" in page.locator("#login-error").inner_text()
            page.screenshot(path=str(ARTIFACTS / "dashboard-login.png"))

            page.fill("#token", token)
            page.click("#login")
            page.wait_for_url(url + "/")
            assert page.locator("#mode-badge").inner_text() == "LIVE"
            assert page.locator("#trading-state").inner_text() == "ACTIVE"
            assert page.locator("#card-mode b").inner_text() == "live"
            assert page.locator("#counts").inner_text().startswith(f"{len(held)} open position(s)")
            page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"), full_page=True)

            # Positions from the live run, with their broker-side stops.
            page.goto(url + "/positions")
            broker_rows = page.locator("#broker-positions-table tbody tr")
            text = page.locator("#broker-positions-table").inner_text()
            assert broker_rows.count() == len(held)
            for symbol in held:
                assert symbol in text
            assert text.count(" %") >= len(held)  # each stop's distance from the entry fill
            assert "NO" not in [
                c.strip() for c in page.locator("#broker-positions-table td:last-child").all_inner_texts()
            ]
            page.screenshot(path=str(ARTIFACTS / "dashboard-positions.png"), full_page=True)

            # Orders and fills, filterable.
            page.goto(url + "/orders")
            orders_text = page.locator("#orders-table").inner_text()
            refs = [o["order_ref"] for o in at_sim if o.get("order_ref")]
            assert refs and all(r in orders_text for r in refs)
            assert page.locator("#fills-table tbody tr").count() > 0
            page.select_option("select[name=state]", "FILLED")
            page.click("#filter")
            states = page.locator("#orders-table tbody td:nth-child(10)").all_inner_texts()
            assert states and set(states) == {"FILLED"}
            page.screenshot(path=str(ARTIFACTS / "dashboard-orders.png"), full_page=True)

            page.goto(url + "/chart?mode=live")
            if page.locator("#equity-chart").count():
                page.wait_for_selector("#equity-chart .main-svg")
            page.screenshot(path=str(ARTIFACTS / "dashboard-equity.png"), full_page=True)

            page.goto(url + "/report")
            assert page.locator("#run-summary").is_visible()
            page.screenshot(path=str(ARTIFACTS / "dashboard-report.png"), full_page=True)

            page.goto(url + "/audit")
            assert "web.auth_failed" in page.locator("#audit-table").inner_text()
            page.screenshot(path=str(ARTIFACTS / "dashboard-audit.png"), full_page=True)

            # Halt: a wrong confirmation does nothing; the typed one halts.
            page.goto(url + "/controls")
            page.select_option("#action", "halt")
            page.fill("#reason", "browser test: halt before the news")
            page.fill("#confirm", "halt")
            page.click("#submit-control")
            assert "confirmation must be 'HALT'" in page.locator("#control-error").inner_text()
            assert page.locator("#trading-state").inner_text() == "ACTIVE"
            page.select_option("#action", "halt")
            page.fill("#reason", "browser test: halt before the news")
            page.fill("#confirm", "HALT")
            page.click("#submit-control")
            assert "HALTED" in page.locator("#control-result").inner_text()
            assert page.locator("#trading-state").inner_text() == "HALTED"
            page.screenshot(path=str(ARTIFACTS / "dashboard-controls.png"), full_page=True)
        finally:
            browser.close()

    # The only errors are the two refusals the test provoked (the wrong token, the API without one).
    assert [c for c in console if c[0] == "error" and "401" not in c[1]] == []
    assert page_errors == []
    assert all(r.startswith(url) for r in requests), [r for r in requests if not r.startswith(url)]

    # The state is the persisted one every process reads: the next live run is refused, nothing sent.
    status = httpx.get(f"{url}/api/status", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert status["trading_state"]["state"] == "halted" and status["trading_state"]["by"].startswith("web:")
    run = subprocess.run(
        [JOE, "run", "--once"],
        cwd=desk["project"],
        env=desk["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    # A halted live run still reconciles (exits and stops stay allowed) but refuses every entry:
    # exit 3, as any run whose entries the trading state refuses (README, "joe run --once").
    assert run.returncode == 3, run.stderr[-3000:]
    assert "new entries refused" in run.stderr and "0 opened" in run.stderr + run.stdout
    assert len(sim_get(control, "orders")) == len(at_sim)  # nothing new reached the broker
    audit = "".join(p.read_text() for p in sorted((desk["project"] / "data/audit").glob("*.jsonl")))
    assert "a-wrong-token-for-the-audit" not in audit and token not in audit
    events = [json.loads(line)["event"] for line in audit.splitlines()]
    assert "web.auth_failed" in events and "safety.kill" in events
