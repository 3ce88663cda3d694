"""The scrape-only metrics token (review r16, README: Prometheus could only scrape with the full web
token, which also halts and flattens): ``<data dir>/metrics-token`` reads ``GET /metrics`` and nothing
else — every page, API read and control answers 403 and is audited; the web token still works there."""

from __future__ import annotations

import stat

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from joe.runtime.bootstrap import Runtime
from joe.safety.control import SafetyContext
from joe.safety.trading_state import TradingState
from joe.web.auth import load_or_create_metrics_token, metrics_token_path

from .conftest import audit_text


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


@pytest.fixture
def metrics_token(client: TestClient, rt: Runtime) -> str:
    return metrics_token_path(rt.data_dir).read_text().strip()


def test_metrics_token_file_is_made_group_readable_and_stable(rt: Runtime, metrics_token: str) -> None:
    path = metrics_token_path(rt.data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert load_or_create_metrics_token(rt.data_dir) == (metrics_token, False)  # kept across starts
    assert len(metrics_token) >= 16


def test_metrics_token_scrapes_and_nothing_else(
    client: TestClient, rt: Runtime, token: str, metrics_token: str
) -> None:
    assert metrics_token != token
    r = client.get("/metrics", headers=bearer(metrics_token))
    assert r.status_code == 200
    names = {f.name for f in text_string_to_metric_families(r.text)}
    assert "joe_trading_halted" in names
    assert client.get("/metrics", headers={"X-Joe-Token": metrics_token}).status_code == 200
    assert client.get("/metrics", headers=bearer(token)).status_code == 200  # the web token still can
    for path in ("/api/status", "/api/positions", "/api/orders", "/openapi.json", "/", "/positions"):
        r = client.get(path, headers=bearer(metrics_token), follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
    for action in ("halt", "reduce", "flatten", "resume"):
        r = client.post(
            f"/api/control/{action}",
            json={"reason": "scraper tries", "confirm": action.upper()},
            headers=bearer(metrics_token),
        )
        assert r.status_code == 403, (action, r.text)
    assert client.post("/metrics", headers=bearer(metrics_token)).status_code == 403
    assert SafetyContext.from_runtime(rt).states.current().state is TradingState.ACTIVE
    text = audit_text(rt)
    assert '"web.auth_failed"' in text and '"via":"metrics"' in text
    assert metrics_token not in text and token not in text


def test_a_wrong_token_still_gets_401_on_metrics(client: TestClient) -> None:
    r = client.get("/metrics", headers=bearer("x" * 40))
    assert r.status_code == 401
