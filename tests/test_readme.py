"""The README stays true: the two commands, every env var and every yaml key with its default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from joe.config.reference import markdown_table
from joe.config.settings import env_names

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_two_commands_first() -> None:
    head = README[:1500]
    assert "make run" in head and "make test" in head


def test_yaml_key_table_matches_schema() -> None:
    start = README.index("<!-- yaml-keys:start -->") + len("<!-- yaml-keys:start -->")
    end = README.index("<!-- yaml-keys:end -->")
    assert README[start:end].strip() == markdown_table().strip()


def test_every_env_var_is_documented() -> None:
    missing = [name for name in env_names().values() if f"`{name}`" not in README]
    assert missing == []


def _commands() -> list[tuple[str, object]]:
    import typer

    from joe.cli.main import app

    out: list[tuple[str, object]] = []

    def walk(cmd: Any, path: str) -> None:  # click commands (typer vendors its own click)
        out.append((path, cmd))
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "joe")
    return out


def test_every_command_and_option_is_documented() -> None:
    usage = README[README.index("## Using it") : README.index("### The sample data")]
    missing = []
    for path, cmd in _commands():
        if path != "joe" and path not in usage:
            missing.append(path)
        for p in getattr(cmd, "params", []):
            if getattr(p, "param_type_name", "") == "option":
                longest = max(p.opts, key=len)
                if longest != "--help" and longest not in usage:
                    missing.append(f"{path} {longest}")
    assert missing == []


def test_live_gates_are_listed_as_joe_mode_shows_them() -> None:
    from joe.config.mode import resolve_mode
    from joe.config.schema import ExecutionConfig
    from joe.config.settings import load_settings

    decision = resolve_mode(load_settings({}), ExecutionConfig(), None)
    section = README[README.index("## Going live safely") :]
    listed = [line.split("`")[1] for line in section.splitlines() if line[:1].isdigit() and ". `" in line]
    assert listed == [g.name for g in decision.gates]
