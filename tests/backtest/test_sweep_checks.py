"""Hostile review of the sweeps: a sweep file is checked whole before anything runs, and every refusal is
one clear line with exit 2 — load-time keys (silently ignored by a sweep, which loads the data once),
grids too large to run, bad random ranges, unknown keys and metrics, and scheduler addresses that are
malformed, closed, or answered by something that is not Dask."""

from __future__ import annotations

import ast
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import NoReturn

import pytest
from typer.testing import CliRunner

from joe.backtest import loading, precompute, sweep
from joe.backtest.sweep import LOAD_TIME_KEYS, MAX_POINTS, METRICS, SweepError, load_spec
from joe.cli.backtest_sweep import connect_scheduler, scheduler_address
from joe.cli.main import app
from joe.config.schema import ExecutionConfig
from sweep_files import refused as _refused
from sweep_files import write_spec as _spec


# ------------------------------------------------------------------------------------- load-time keys
def _config_reads(module: object) -> set[str]:
    """Every `config.<section>.<key>` (or `cfg.`) attribute chain read in a module's source."""
    tree = ast.parse(Path(module.__file__).read_text())  # type: ignore[attr-defined]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            base = node.value.value
            if isinstance(base, ast.Name) and base.id in ("config", "cfg"):
                found.add(f"{node.value.attr}.{node.attr}")
    return found


def test_every_config_key_read_while_loading_is_refused_in_a_sweep(tmp_path: Path) -> None:
    """Review: `pipeline.universe_size: [1, 500]` gave identical rows (the cap acts when the data is
    loaded, and a sweep loads once) while the serial runs differed. Every key the loading modules read
    is listed, and each listed key (or its whole section) is refused, naming the key and why."""
    reads = _config_reads(loading) | _config_reads(precompute)
    assert "pipeline.universe_size" in reads  # the parser sees what it should
    assert reads <= set(LOAD_TIME_KEYS), reads - set(LOAD_TIME_KEYS)
    for key in LOAD_TIME_KEYS:
        for mode in ("grid", "random"):
            msg = _refused(tmp_path, f"mode: {mode}\nparameters:\n  {key}: [100, 200]\n")
            assert f"{key} cannot be swept" in msg and " load" in msg, msg
    msg = _refused(tmp_path, "parameters:\n  pipeline: [{universe_size: 1}]\n")
    assert "pipeline cannot be swept" in msg and "pipeline.universe_size" in msg


# ---------------------------------------------------------------------------------------- size limit
def test_a_huge_grid_is_refused_at_once_with_its_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = ["risk.max_positions", "pipeline.top_n", "pipeline.max_signals", "pipeline.min_score",
            "paper.spread_bps", "paper.slippage_bps", "risk.max_position_pct"]  # fmt: skip
    text = "parameters:\n" + "".join(f"  {k}: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" for k in keys)

    def built(*_a: object, **_k: object) -> NoReturn:
        raise AssertionError("a parameter set was built or checked before the count refused the file")

    # Counted, not built: no point is made or checked (not "within 2 s", which a loaded machine can miss).
    with monkeypatch.context() as m:
        m.setattr(sweep, "itertools", SimpleNamespace(product=built))
        m.setattr(sweep, "_check_point", built)
        m.setattr(sweep, "_draw", built)
        msg = _refused(tmp_path, text)
        assert "10,000,000 parameter sets" in msg and f"{MAX_POINTS:,}" in msg and "fewer values" in msg
        many = f"mode: random\nsamples: {MAX_POINTS + 1}\nparameters:\n  pipeline.top_n: [1, 2]\n"
        msg = _refused(tmp_path, many)
    assert f"{MAX_POINTS + 1:,} parameter sets" in msg and "lower samples" in msg
    ok = "parameters:\n  pipeline.top_n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n  risk.max_positions: [1, 2, 3]\n"
    assert len(load_spec(_spec(tmp_path, ok), ExecutionConfig()).points) == 30


# ---------------------------------------------------------------------------------- the file's shape
def test_bad_random_ranges_are_named(tmp_path: Path) -> None:
    cases = {
        "{low: 10, high: 5}": "low (10) is above high (5)",
        "{low: a, high: b}": "low must be a number, not 'a'",
        "{low: 1, high: [2]}": "high must be a number",
        "{low: 1, high: 5, step: 1}": "must be a list or {low: N, high: N}",
        "{low: -5, high: 5}": "risk.max_positions=-5",
        "{low: 1.5, high: 5}": "risk.max_positions=1.5",
    }
    for values, words in cases.items():
        msg = _refused(tmp_path, f"mode: random\nparameters:\n  risk.max_positions: {values}\n")
        assert words in msg and "risk.max_positions" in msg, (values, msg)
    msg = _refused(tmp_path, "parameters:\n  risk.max_positions: {low: 1, high: 5}\n")
    assert "need mode: random" in msg


def test_unknown_keys_and_non_metrics_are_refused(tmp_path: Path) -> None:
    msg = _refused(tmp_path, "sampels: 3\nmetrc: sortino\nparameters:\n  risk.max_positions: [3]\n")
    assert "'sampels'" in msg and "'metrc'" in msg and "samples" in msg
    msg = _refused(tmp_path, "parameters:\n  risk.max_positions: [3]\nwalk_forward: {in_sample: 5, oos: 3}\n")
    assert "walk_forward: unknown key(s) 'oos'" in msg
    msg = _refused(tmp_path, "samples: 3\nparameters:\n  risk.max_positions: [3]\n")
    assert "random only" in msg
    for metric in ("start", "end", "days", "max_drawdown_peak", "starting_equity"):
        msg = _refused(tmp_path, f"metric: {metric}\nparameters:\n  risk.max_positions: [3]\n")
        assert f"metric {metric!r} is not a backtest metric" in msg and "sharpe" in msg
    msg = _refused(tmp_path, "parameters:\n  risk.max_positons: [3]\n")
    assert "--set" not in msg and "sweep file's parameter 'risk.max_positons' is not a config key" in msg


def test_every_rankable_metric_is_a_metric_of_the_report() -> None:
    import pandas as pd

    from joe.backtest.metrics import compute_metrics

    empty = pd.Series([], dtype=float, index=pd.DatetimeIndex([]))
    assert set(METRICS) <= set(compute_metrics(empty, [], {}))
    assert set(METRICS.values()) == {"max", "min"}


# ------------------------------------------------------------------------------------------ scheduler
@pytest.fixture
def garbage_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that answers anything with bytes that are not Dask's protocol."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        conns = []
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\xff" * 200)
            conns.append(conn)
        for c in conns:
            c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(5)
    srv.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_scheduler_addresses_are_checked_before_connecting() -> None:
    assert scheduler_address("tcp://127.0.0.1:8786") == ("tcp://127.0.0.1:8786", "127.0.0.1", 8786)
    assert scheduler_address("host:8786")[0] == "tcp://host:8786"
    assert scheduler_address("tls://[::1]:8786")[1:] == ("::1", 8786)
    for bad, words in {
        "notanaddress": "is not an address",
        "tcp://127.0.0.1": "is not an address",
        "tcp://h:port": "port must be a number",
        "tcp://h:0": "port must be a number",
        "tcp://h:70000": "port must be a number",
        "http://h:80": "scheme http:// is not supported",
    }.items():
        with pytest.raises(SweepError, match="--scheduler") as exc:
            scheduler_address(bad)
        assert words in str(exc.value) and "tcp://HOST:PORT" in str(exc.value)


@pytest.mark.timeout(60)
def test_a_closed_port_or_a_server_that_is_not_dask_is_one_clear_error(garbage_server: int) -> None:
    port = _closed_port()
    # Refused by the plain TCP connect, at once: not a timed-out connect, and Dask's client (which waits
    # out its own timeout) never tried. Before: "within 5 s", a wall-clock bound a loaded machine can miss.
    with (
        ExitStack() as stack,
        pytest.raises(SweepError, match=f"tcp://127.0.0.1:{port}: cannot connect") as no,
    ):
        connect_scheduler(stack, f"tcp://127.0.0.1:{port}")
    assert "Connection refused" in str(no.value) and "timed out" not in str(no.value)
    with ExitStack() as stack, pytest.raises(SweepError, match="not as a Dask scheduler") as exc:
        connect_scheduler(stack, f"127.0.0.1:{garbage_server}", timeout_s=5)
    assert f"tcp://127.0.0.1:{garbage_server}" in str(exc.value) and "EiB" not in str(exc.value)


@pytest.mark.timeout(120)
def test_the_command_refuses_each_with_exit_2_and_no_traceback(
    project: Path, market_dir: Path, garbage_server: int
) -> None:
    (project / "grid.yaml").write_text("parameters:\n  risk.max_positions: [3, 8]\n")
    (project / "random.yaml").write_text(
        "mode: random\nparameters:\n  risk.max_positions: {low: 10, high: 5}\n"
    )
    (project / "load.yaml").write_text("parameters:\n  pipeline.universe_size: [1, 500]\n")
    src = f"csv:{market_dir}"
    cases = {
        ("--sweep", "random.yaml"): "low (10) is above high (5)",
        ("--sweep", "load.yaml"): "pipeline.universe_size cannot be swept",
        ("--sweep", "grid.yaml", "--scheduler", "notanaddress"): "is not an address",
        ("--sweep", "grid.yaml", "--scheduler", f"tcp://127.0.0.1:{_closed_port()}"): "cannot connect",
        ("--sweep", "grid.yaml", "--scheduler", f"127.0.0.1:{garbage_server}"): "not as a Dask scheduler",
    }
    for args, words in cases.items():
        res = CliRunner().invoke(app, ["backtest", "--source", src, *args])
        assert res.exit_code == 2, (args, res.output)
        out = res.output.replace("\n", "")
        assert words in out and "Traceback" not in out, (args, res.output)
    assert not (project / "data" / "backtests").exists()
