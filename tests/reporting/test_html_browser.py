"""The HTML report in headless Chromium: loads offline, no console errors, no network, key parts visible."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from joe.reporting.generator import ReportGenerator

from .sample_context import make_context

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
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


def _chromium() -> str | None:
    for name in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(name).exists():
            return name
    return shutil.which("chromium")


def test_report_renders_offline_in_headless_chromium(tmp_path: Path) -> None:
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (.ci/run installs the Debian package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    paths = ReportGenerator(tmp_path).write(make_context(n_signals=8))
    url = paths.html.resolve().as_uri()

    console: list[tuple[str, str]] = []
    page_errors: list[str] = []
    requests: list[str] = []
    failed: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(url, wait_until="load")
            page.wait_for_load_state("networkidle")

            regime = page.locator("#regime-chart svg")
            table = page.locator("#signals-table")
            assert regime.is_visible()
            assert regime.bounding_box() is not None and regime.bounding_box()["height"] > 100  # type: ignore[index]
            assert table.is_visible()
            # One row per signal, with the escaped (not interpreted) text intact.
            assert table.locator("tbody tr").count() == 8
            assert page.locator(".signal-chart svg").count() == 8
            assert page.locator("#equity-chart svg").is_visible()
            assert page.locator("#mode-badge").inner_text() == "PAPER"
            assert "<2x>" in page.locator("#signal-1").inner_text()

            artifacts = REPO_ROOT / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "report.png"), full_page=True)
        finally:
            browser.close()

    assert [c for c in console if c[0] in ("error", "warning")] == []
    assert page_errors == []
    assert failed == []
    # The page itself is the only request; nothing is fetched from anywhere else.
    assert requests == [url]
    assert (REPO_ROOT / "test-artifacts" / "report.png").stat().st_size > 10_000
