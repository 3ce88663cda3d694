"""The README stays true: the two commands, every env var and every yaml key with its default."""

from __future__ import annotations

from pathlib import Path

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
