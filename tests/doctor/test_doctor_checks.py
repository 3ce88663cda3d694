"""Each `joe doctor` line fails for its own problem: a skewed clock (against each simulator's server
time), a nearly full disk (a real small tmpfs, and the injectable probe), an audit tail cut, an
invalid config, an unreachable alert channel; and nothing else fails with it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from joe.cli.doctor_checks import MIB, Check, Status
from joe.cli.doctor_cmd import run_checks, run_checks_async, summary
from joe.runtime.bootstrap import Runtime, bootstrap
from joe.simulators.capital import CapitalSimulator
from joe.simulators.common.clock import SimClock
from joe.simulators.ibkr import IBKRSimulator

from .conftest import clean_env

JOE = str(Path(sys.executable).with_name("joe"))


@pytest.fixture
def runtime(project: Path) -> Iterator[Callable[[], Runtime]]:
    opened: list[Runtime] = []

    def make() -> Runtime:
        rt = bootstrap()
        opened.append(rt)
        return rt

    yield make
    for rt in opened:
        rt.audit.close()
        rt.close()


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def failing(checks: list[Check]) -> list[str]:
    return [c.name for c in checks if c.status is Status.FAIL]


def skewed(seconds: float) -> Callable[[], datetime]:
    return lambda: datetime.now(UTC) + timedelta(seconds=seconds)


@pytest.fixture
async def ibkr_sim() -> AsyncIterator[IBKRSimulator]:
    sim = IBKRSimulator(server_version=178, seed=3)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def test_local_clock_skewed_against_ibkr_fails_the_clock_line(
    ibkr_sim: IBKRSimulator, runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOE_BROKER", "ibkr")
    monkeypatch.setenv("IBKR_PORT", str(ibkr_sim.port))
    monkeypatch.setenv("IBKR_ACCOUNT", "DU1234567")
    rt = runtime()
    good = by_name(await run_checks_async(rt, network=True))
    assert good["clock"].status is Status.PASS, good["clock"]

    # The local clock 30 s ahead of TWS: beyond the 5 s stale-quote limit.
    checks = await run_checks_async(rt, clock=skewed(30), network=True)
    assert failing(checks) == ["clock"], [c for c in checks if c.status is Status.FAIL]
    line = by_name(checks)["clock"]
    assert "ahead of IBKR" in line.detail and "stale-quote limit" in line.detail
    assert "NTP" in line.fix or "ntp" in line.fix
    # 4 s: suspicious (WARN), not yet beyond the limit; whole-second server time is forgiven.
    mid = by_name(await run_checks_async(rt, clock=skewed(-4.5), network=True))["clock"]
    assert mid.status is Status.WARN, mid
    assert "behind" in mid.detail


async def test_capital_server_clock_skewed_fails_the_clock_line(
    runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The broker's own clock is off this time: 20 s in the past.
    sim = CapitalSimulator(seed=3, clock=SimClock(datetime.now(UTC) - timedelta(seconds=20)))
    await sim.start()
    try:
        monkeypatch.setenv("JOE_BROKER", "capital")
        monkeypatch.setenv("CAPITAL_API_URL", sim.url)
        monkeypatch.setenv("CAPITAL_STREAM_URL", sim.stream_url)
        monkeypatch.setenv("CAPITAL_API_KEY", sim.login.api_key)
        monkeypatch.setenv("CAPITAL_IDENTIFIER", sim.login.identifier)
        monkeypatch.setenv("CAPITAL_PASSWORD", sim.login.password)
        checks = await run_checks_async(runtime(), network=True)
    finally:
        await sim.stop()
    assert failing(checks) == ["clock"]
    assert "ahead of Capital.com" in by_name(checks)["clock"].detail


def test_nearly_full_disk_fails_the_disk_line_injected_probe(runtime: Callable[[], Runtime]) -> None:
    rt = runtime()
    checks = run_checks(rt, free_space=lambda _p: (50 * MIB, 100_000 * MIB), network=False)
    assert failing(checks) == ["disk"]
    assert "50 MiB free" in by_name(checks)["disk"].detail
    assert "JOE_DATA_DIR" in by_name(checks)["disk"].fix
    low = by_name(run_checks(rt, free_space=lambda _p: (600 * MIB, 100_000 * MIB), network=False))["disk"]
    assert low.status is Status.WARN


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MiB tmpfs (needs root and mount rights; skipped otherwise), unmounted afterwards."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_nearly_full_disk_fails_on_a_real_small_tmpfs(
    small_tmpfs: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = small_tmpfs / "data"
    monkeypatch.setenv("JOE_DATA_DIR", str(data))
    out = subprocess.run(
        [JOE, "doctor", "--json", "--offline"], cwd=project, env=clean_env(), capture_output=True, text=True
    )
    doc = json.loads(out.stdout)
    assert out.returncode == 1
    assert [c["name"] for c in doc["checks"] if c["status"] == "FAIL"] == ["disk"]
    # Fill it up: the write probe fails too, naming the folder.
    with open(small_tmpfs / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    out = subprocess.run(
        [JOE, "doctor", "--json", "--offline"], cwd=project, env=clean_env(), capture_output=True, text=True
    )
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    names = {c["name"]: c for c in doc["checks"]}
    assert names["disk"]["status"] == "FAIL"
    assert any(c["status"] == "FAIL" and str(data) in c["detail"] for c in doc["checks"]), doc


def test_audit_tail_cut_fails_the_audit_line_and_the_command(project: Path) -> None:
    rt = bootstrap()
    for i in range(5):
        rt.audit.record("test.event", {"i": i})
    rt.audit.close()
    rt.close()
    audit_file = sorted((project / "data" / "audit").glob("audit-*.jsonl"))[-1]
    kept = audit_file.read_text().splitlines(keepends=True)[:-2]
    audit_file.write_text("".join(kept))

    out = subprocess.run(
        [JOE, "doctor", "--json", "--offline"], cwd=project, env=clean_env(), capture_output=True, text=True
    )
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert [c["name"] for c in doc["checks"] if c["status"] == "FAIL"] == ["audit"]
    line = next(c for c in doc["checks"] if c["name"] == "audit")
    assert "BROKEN" in line["detail"] and line["fix"]
    # The human form says the same, one line per check with what to do.
    human = subprocess.run(
        [JOE, "doctor", "--offline"], cwd=project, env=clean_env(), capture_output=True, text=True
    )
    assert human.returncode == 1
    assert "FAIL audit" in human.stdout and "NOT healthy" in human.stdout


def test_invalid_config_fails_the_config_line(project: Path, runtime: Callable[[], Runtime]) -> None:
    (project / "execution.yaml").write_text("version: 1\nrisk:\n  max_positons: 3\n")
    checks = run_checks(runtime(), network=False)
    assert failing(checks) == ["config"]
    assert "max_positons" in by_name(checks)["config"].detail
    assert summary(checks)["ok"] is False


@pytest.mark.parametrize("typo", ["lve", "papr", "liv e"])
def test_a_mode_typo_is_named_as_a_typo_not_as_failed_live_gates(
    runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch, typo: str
) -> None:
    """TRADING_MODE=lve is paper, and the doctor says why: no such mode (before: it blamed five live gates,
    a new user's report). A real live request with failed gates keeps naming the gates."""
    monkeypatch.setenv("TRADING_MODE", typo)
    mode = by_name(run_checks(runtime(), network=False))["mode"]
    assert mode.status is Status.WARN and mode.detail.startswith("paper"), mode
    assert "is no mode" in mode.fix and "paper, shadow or live" in mode.fix and "gates" not in mode.fix
    monkeypatch.setenv("TRADING_MODE", "")
    monkeypatch.setenv("trading_mode", "live")  # a second spelling: contradictory, not a typo
    clash = by_name(run_checks(runtime(), network=False))["mode"]
    assert clash.status is Status.WARN and "is no mode" not in clash.fix, clash
    monkeypatch.delenv("trading_mode")
    monkeypatch.setenv("TRADING_MODE", "live")
    live = by_name(run_checks(runtime(), network=False))["mode"]
    assert live.status is Status.WARN and "gates" in live.fix and "is no mode" not in live.fix


async def test_alert_channels_reachable_or_failing(
    runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "123456:doctor-test-token-abcdef"

    async def get_me(request: web.Request) -> web.Response:
        if request.match_info["token"] != token:
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        return web.json_response({"ok": True, "result": {"id": 1, "is_bot": True, "username": "joe_bot"}})

    app = web.Application()
    app.router.add_get("/bot{token}/getMe", get_me)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        monkeypatch.setenv("TELEGRAM_API_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("TELEGRAM_CHAT_ID", "42")
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
        ok = by_name(await run_checks_async(runtime(), network=True))["alerts.telegram"]
        assert ok.status is Status.PASS and "@joe_bot" in ok.detail
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:wrong-token-zzzzzz")
        checks = await run_checks_async(runtime(), network=True)
        bad = by_name(checks)["alerts.telegram"]
        assert failing(checks) == ["alerts.telegram"]
        assert "401" in bad.detail and "wrong-token" not in json.dumps(summary(checks))
    finally:
        await runner.cleanup()


def test_dashboard_token_readable_by_others_fails(runtime: Callable[[], Runtime]) -> None:
    from joe.web.auth import load_or_create_token, token_path

    rt = runtime()
    load_or_create_token(rt.data_dir)
    assert by_name(run_checks(rt, network=False))["web_token"].status is Status.PASS
    token_path(rt.data_dir).chmod(0o644)
    checks = run_checks(rt, network=False)
    assert failing(checks) == ["web_token"]
    assert "0644" in by_name(checks)["web_token"].detail
    assert token_path(rt.data_dir).read_text().strip() not in json.dumps(summary(checks))
