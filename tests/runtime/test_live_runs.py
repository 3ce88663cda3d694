"""`joe run --once` and the resolved mode: JOE_BROKER is honoured, safety refusals exit 3 (issue 10)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from joe.cli.main import app


def test_joe_broker_is_honoured_by_joe_run(project: Path) -> None:
    """Before: `--broker` defaulted to sim and won over JOE_BROKER, so `joe mode` could name ibkr while
    `joe run --once` did a paper run on sim and exited 0. Now the run opens IBKR, whose real-money
    port is refused in paper mode (exit 3, nothing sent)."""
    env = {"JOE_BROKER": "ibkr", "IBKR_PORT": "7496", "IBKR_ACCOUNT": "U7654321"}
    result = CliRunner().invoke(app, ["run", "--once"], env=env)
    assert result.exit_code == 3, result.output
    assert "Refused" in result.output and "7496" in result.output
    assert not (project / "data/reports").exists()


def test_joe_broker_from_dotenv_is_honoured(project: Path) -> None:
    (project / ".env").write_text("JOE_BROKER=ibkr\nIBKR_PORT=4001\n")
    result = CliRunner().invoke(app, ["run", "--once"])
    assert result.exit_code == 3, result.output
    assert "4001" in result.output


def test_broker_option_still_wins_over_joe_broker(project: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--once", "--broker", "bogus"], env={"JOE_BROKER": "ibkr"})
    assert result.exit_code == 2 and "--broker must be" in result.output


def test_bad_source_is_a_bad_argument(project: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--once", "--source", "nowhere:xyz"])
    assert result.exit_code == 2, result.output
