"""Issue 15.2-15.4: one clear line and the documented exit code instead of tracebacks and silences.

Exit codes (README): 1 failed, 2 bad arguments, 3 refused for safety.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from typer.testing import CliRunner

from daemon_proc import refused_port, sim_process
from joe.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
JOE = str(Path(sys.executable).with_name("joe"))


def one_line_error(text: str) -> None:
    assert "Traceback" not in text, text
    assert len([ln for ln in text.splitlines() if ln.strip()]) <= 3, text


# ------------------------------------------------------------------------------------------ config
def test_invalid_config_stops_the_run_with_exit_2_and_trades_nothing(project: Path) -> None:
    (project / "config/execution.yaml").write_text("risk:\n  risk_per_trade_pct: -1\n")
    result = CliRunner().invoke(app, ["run", "--once"])
    assert result.exit_code == 2, result.output
    assert "Invalid config" in result.output and "risk.risk_per_trade_pct" in result.output
    assert "nothing was traded" in result.output
    assert not (project / "data/reports").exists()
    mode = CliRunner().invoke(app, ["mode", "--json"])
    assert json.loads(mode.stdout)["mode"] == "paper"  # the mode still resolves, to paper


def test_invalid_config_stops_the_daemon_too_and_doctor_says_so(project: Path) -> None:
    """`joe daemon` refuses an unreadable config like `joe run` (before: it ran in paper on the defaults,
    as `joe doctor` said - the run refused; a new user's report), and the doctor's advice matches."""
    (project / "config/execution.yaml").write_text("risk:\n  max_positions: yes\n")
    result = CliRunner().invoke(app, ["daemon"])
    assert result.exit_code == 2, result.output
    assert "Invalid config" in result.output and "risk.max_positions" in result.output
    audit = "".join(p.read_text() for p in (project / "data/audit").glob("*.jsonl"))
    assert '"daemon.refused"' in audit and "invalid config" in audit
    assert not (project / "data/daemon").exists() or not any((project / "data/daemon").iterdir())
    doctor = CliRunner().invoke(app, ["doctor"])
    assert "refuse to start (exit 2)" in doctor.output, doctor.output
    assert "runs in paper on the defaults" not in doctor.output


@pytest.mark.parametrize("text", ["", "# all defaults\n"])
def test_an_empty_config_file_says_so(project: Path, text: str) -> None:
    (project / "config/execution.yaml").write_text(text)
    result = CliRunner().invoke(app, ["run", "--once"])
    assert result.exit_code == 0, result.output
    assert "file is empty; using the built-in defaults" in result.output
    report = Path(result.stdout.split("Report: ")[1].strip()).parent
    assert "file is empty" in (report / "report.md").read_text()


def test_a_dotenv_line_with_a_non_utf8_byte_is_named_and_the_rest_is_kept(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOE_LOG_LEVEL", raising=False)
    (project / ".env").write_bytes(b"JOE_LOG_LEVEL=WARNING\nTELEGRAM_CHAT_ID=4\xff2\n")
    from joe.config.settings import load_settings

    settings = load_settings()
    assert settings.log_level == "WARNING"  # the good line is used
    assert any("line 2 (variable TELEGRAM_CHAT_ID) is not UTF-8" in p for p in settings.problems)
    result = CliRunner().invoke(app, ["run", "--once"])
    assert "line 2 (variable TELEGRAM_CHAT_ID) is not UTF-8" in result.output


# --------------------------------------------------------------------------------------- run args
def test_as_of_outside_a_csv_source_names_the_valid_range(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "prices"
    folder.mkdir()
    import pandas as pd

    days = pd.bdate_range("2022-01-03", periods=260)
    (folder / "ACME.csv").write_text(
        "date,open,high,low,close,volume\n" + "\n".join(f"{d.date()},10,11,9,10.5,1000000" for d in days)
    )
    for as_of in ("2010-01-04", "1999-12-31"):
        result = CliRunner().invoke(app, ["run", "--once", "--source", f"csv:{folder}", "--as-of", as_of])
        assert result.exit_code == 2, result.output
        (line,) = [ln for ln in result.output.splitlines() if ln.startswith("Bad arguments")]
        assert "choose a date between 2022-01-03 and 2022-12-30" in line
        assert "Traceback" not in result.output


def test_as_of_long_after_a_csv_source_ends_names_the_range(project: Path, tmp_path: Path) -> None:
    """Past the stale limit every series would be excluded: a bad argument naming the range, not a crash."""
    folder = tmp_path / "prices"
    folder.mkdir()
    import pandas as pd

    days = pd.bdate_range("2022-01-03", periods=300)
    (folder / "ACME.csv").write_text(
        "date,open,high,low,close,volume\n" + "\n".join(f"{d.date()},10,11,9,10.5,1000000" for d in days)
    )
    last = days[-1].date()
    for as_of in ("2030-01-01", str((days[-1] + pd.offsets.BDay(4)).date())):
        result = CliRunner().invoke(app, ["run", "--once", "--source", f"csv:{folder}", "--as-of", as_of])
        assert result.exit_code == 2, result.output
        (line,) = [ln for ln in result.output.splitlines() if ln.startswith("Bad arguments")]
        assert f"after the data in {folder} ends ({last}" in line
        assert f"choose a date between 2022-01-03 and {last}" in line
        assert "Error:" not in line and "Traceback" not in result.output


def test_too_short_an_index_history_is_a_bad_argument_without_a_class_name(
    project: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "prices"
    folder.mkdir()
    import pandas as pd

    days = pd.bdate_range("2022-01-03", periods=120)
    for sym in ("ACME", "SPX"):
        (folder / f"{sym}.csv").write_text(
            "date,open,high,low,close,volume\n"
            # Clean bars (close within high/low, small moves): only the index history is too short.
            + "\n".join(f"{d.date()},10,11,9,{10 + (i % 3) / 10},1000000" for i, d in enumerate(days))
        )
    result = CliRunner().invoke(app, ["run", "--once", "--source", f"csv:{folder}"])
    assert result.exit_code == 2, result.output
    assert "not enough index history to label the regime" in result.output
    assert "ValueError" not in result.output and "Traceback" not in result.output


def test_sample_as_of_outside_the_data_is_a_bad_argument(project: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--once", "--as-of", "1990-01-02"])
    assert result.exit_code == 2, result.output
    assert "choose a date between 1999-01-04 and 2018-12-31" in result.output


@pytest.mark.parametrize("broker", ["capital", "ibkr"])
@pytest.mark.parametrize("source", ["csv:/x", "parquet:/y", "sample"])  # `sample` given explicitly too
def test_source_with_a_broker_is_refused_not_ignored(project: Path, broker: str, source: str) -> None:
    result = CliRunner().invoke(app, ["run", "--once", "--broker", broker, "--source", source])
    assert result.exit_code == 2, result.output
    assert f"--source {source} applies to --broker sim only" in result.output
    assert not (project / "data").exists()  # refused before anything started


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("garbage", "JOE_DB_URL is not a database URL"),
        ("postgresql+nosuchdriver://u@127.0.0.1/joe", "Install the driver"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        ["run", "--once"],
        ["status"],
        ["kill", "--halt", "--reason", "testing the store"],
        ["resume", "--reason", "testing the store"],
        ["daemon"],
    ],
    ids=lambda c: c[0],
)
def test_store_errors_say_what_is_wrong(
    project: Path, monkeypatch: pytest.MonkeyPatch, url: str, needle: str, command: list[str]
) -> None:
    """Every command that opens the store explains its failure the same way (the variable, the fix)."""
    monkeypatch.setenv("JOE_DB_URL", url)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1, result.output
    assert needle in result.output and "writable data folder" not in result.output
    assert "<unparseable database URL>" not in result.output
    one_line_error(result.output.split("mode.resolved")[-1])


def test_an_unreachable_database_server_is_not_called_damaged(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("psycopg")
    with refused_port() as port:  # nobody listens on it, and no other test's server can take it meanwhile
        monkeypatch.setenv("JOE_DB_URL", f"postgresql+psycopg://u:pw@127.0.0.1:{port}/x")
        result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 1, result.output
    assert "cannot be reached" in result.output and "damaged" not in result.output
    assert "pw@" not in result.output


def test_a_corrupt_database_is_not_called_an_unwritable_folder(project: Path) -> None:
    (project / "data").mkdir()
    (project / "data/joe.db").write_bytes(b"this is not a database at all" * 100)
    result = CliRunner().invoke(app, ["run", "--once"])
    assert result.exit_code == 1, result.output
    assert "move it aside" in result.output and "writable data folder" not in result.output


def test_main_py_without_the_virtualenv_says_what_to_run(tmp_path: Path) -> None:
    # `python -S -I` hides site-packages (no typer), as a system python without Joe's dependencies.
    r = subprocess.run(
        [sys.executable, "-S", "-I", str(ROOT / "main.py"), "--once"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 1
    assert ".venv/bin/python main.py --once" in r.stderr and "make install" in r.stderr
    one_line_error(r.stderr)


def test_no_python_warning_leaks_to_the_console(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "prices"
    folder.mkdir()
    import pandas as pd

    days = pd.bdate_range("2022-01-03", periods=260)
    for sym, start in (("EARLY", 0), ("LATE", 200)):  # days when only one (or no) symbol trades
        rows = [f"{d.date()},10,11,9,{10 + i % 5},1000000" for i, d in enumerate(days) if i >= start]
        (folder / f"{sym}.csv").write_text("date,open,high,low,close,volume\n" + "\n".join(rows))
    env = {**os.environ, "JOE_LOG_LEVEL": "WARNING", "PYTHONWARNINGS": "default"}
    r = subprocess.run(
        [JOE, "run", "--once", "--source", f"csv:{folder}"],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
    )
    assert "Warning:" not in r.stderr and "Mean of empty slice" not in r.stderr, r.stderr[-3000:]


# ------------------------------------------------------------------------------------------ audit/report
def test_audit_verify_on_a_missing_folder_is_a_bad_argument(project: Path) -> None:
    for cmd in (["audit", "verify"], ["audit", "tail"]):
        result = CliRunner().invoke(app, [*cmd, "--dir", str(project / "nonexistent/typo")])
        assert result.exit_code == 2, result.output
        assert "does not exist" in result.output and "no audit records" not in result.output


def test_report_rerender_of_a_corrupt_facts_file_names_the_file(project: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--once"])
    report_dir = Path(result.stdout.split("Report: ")[1].strip()).parent
    (report_dir / "facts.json").write_text("{ not json")
    r = CliRunner().invoke(app, ["report", report_dir.name, "--rerender"])
    assert r.exit_code == 1
    assert str(report_dir / "facts.json") in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["report", "--root", str(project / "nope")])
    assert r.exit_code == 2 and "--root" in r.output


# ------------------------------------------------------------------------------------------ simulators
@pytest.mark.parametrize("kind", ["capital", "ibkr"])
@pytest.mark.parametrize("port", ["99999", "-5"])
def test_sim_port_out_of_range_is_one_line_exit_2(kind: str, port: str) -> None:
    result = CliRunner().invoke(app, ["sim", kind, "--port", port])
    assert result.exit_code == 2
    assert f"--port must be between 0 and 65535 (0 = any free port), not {port}" in result.output
    one_line_error(result.output)


def test_sim_control_port_out_of_range_names_that_option() -> None:
    result = CliRunner().invoke(app, ["sim", "ibkr", "--control-port", "99999"])
    assert result.exit_code == 2
    assert "--control-port must be between 0 and 65535" in result.output
    assert "--port must" not in result.output.replace("--control-port must", "")


@pytest.mark.parametrize("kind", ["capital", "ibkr"])
def test_sim_port_in_use_is_one_line_exit_1(kind: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["sim", kind, "--port", str(port)])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    one_line_error(result.output)


@pytest.fixture
def sims() -> Iterator[ExitStack]:
    """Simulators started in a test (`sims.enter_context(sim_process(...))`), stopped after it."""
    with ExitStack() as stack:
        yield stack


def _exports(lines: list[str]) -> dict[str, str]:
    return dict(ln.strip().removeprefix("export ").split("=", 1) for ln in lines if "export " in ln)


@pytest.mark.parametrize("suffix", ["", "/api/v1"])
def test_sim_capital_prints_what_to_export_and_joe_runs_against_it(
    project: Path, monkeypatch: pytest.MonkeyPatch, sims: ExitStack, suffix: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPITAL_")}
    lines = sims.enter_context(sim_process("capital", env=env)).run.lines
    exports = _exports(lines)
    assert set(exports) == {
        "CAPITAL_API_URL",
        "CAPITAL_STREAM_URL",
        "CAPITAL_API_KEY",
        "CAPITAL_IDENTIFIER",
        "CAPITAL_PASSWORD",
    }
    # The demo credentials are printed as they are (published values, not masked as secrets).
    assert exports["CAPITAL_API_KEY"] == "sim-api-key"
    assert exports["CAPITAL_IDENTIFIER"] == "trader@example.com"
    assert exports["CAPITAL_PASSWORD"] == "sim-password"
    for k, v in exports.items():
        monkeypatch.setenv(k, v + suffix if k == "CAPITAL_API_URL" else v)
    (project / "config/execution.yaml").write_text("pipeline:\n  universe_size: 20\nai:\n  enabled: false\n")
    result = CliRunner().invoke(app, ["run", "--once", "--broker", "capital"])
    assert result.exit_code == 0, result.output


def test_sim_capital_accepts_the_environments_credentials_without_printing_them(
    project: Path, monkeypatch: pytest.MonkeyPatch, sims: ExitStack
) -> None:
    creds = {
        "CAPITAL_API_KEY": "my-own-key-123",
        "CAPITAL_IDENTIFIER": "me@example.org",
        "CAPITAL_PASSWORD": "my-own-pass-456",
    }
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CAPITAL_")}, **creds}
    lines = sims.enter_context(sim_process("capital", env=env)).run.lines
    text = "\n".join(lines)
    assert "my-own-key-123" not in text and "my-own-pass-456" not in text
    assert "CAPITAL_API_KEY is taken from your environment" in text
    for k, v in {**creds, **_exports(lines)}.items():
        monkeypatch.setenv(k, v)
    (project / "config/execution.yaml").write_text("pipeline:\n  universe_size: 20\nai:\n  enabled: false\n")
    result = CliRunner().invoke(app, ["run", "--once", "--broker", "capital"])
    assert result.exit_code == 0, result.output


def test_sim_ibkr_prints_ibkr_port_and_account(sims: ExitStack) -> None:
    """`--port 0`: the port the OS picked is the one printed, and the simulator is listening on it."""
    sim = sims.enter_context(sim_process("ibkr", env=dict(os.environ)))
    exports = _exports(sim.run.lines)
    assert exports["IBKR_PORT"] == str(sim.port) and sim.port != 0
    socket.create_connection(("127.0.0.1", sim.port), timeout=10).close()
    assert exports["IBKR_ACCOUNT"] == "DU1234567"
