"""Every section of config/execution.yaml rejects an unknown key, naming the file, the key path and
the closest valid key ("did you mean"); `joe run` stops on it with exit 2 and trades nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from joe.config.loader import ConfigError, closest_key, parse_execution_config
from joe.config.schema import ExecutionConfig

FILE = "cfg/execution.yaml"


def sections(model: type[BaseModel] = ExecutionConfig, prefix: tuple[str, ...] = ()) -> list[Any]:
    """(path, model) of every section of the schema, the whole file included."""
    out: list[Any] = [(prefix, model)]
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += sections(ann, (*prefix, name))
    return out


SECTIONS = sections()
ALL_PATHS = {".".join((*path, f)) for path, model in SECTIONS for f in model.model_fields}
# (section path, a valid key of it): every key of every section.
FIELDS = [(path, f) for path, model in SECTIONS for f in model.model_fields]


def nest(path: tuple[str, ...], key: str, value: Any) -> dict[str, Any]:
    doc: Any = {key: value}
    for part in reversed(path):
        doc = {part: doc}
    return dict(doc)


def error_of(doc: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_execution_config(yaml.safe_dump(doc), FILE)
    return str(exc.value)


def test_every_section_of_the_schema_is_covered() -> None:
    names = {".".join(p) for p, _ in SECTIONS}
    assert {"", "risk", "paper", "safety.breaker", "safety.protections", "daemon.schedule"} <= names
    assert len(FIELDS) == len(ALL_PATHS) > 90


def _typos(key: str) -> list[str]:
    """Misspellings a user makes: a letter dropped, one doubled, the case changed."""
    mid = len(key) // 2
    return [key[:mid] + key[mid + 1 :], key[:mid] + key[mid] + key[mid:], key.upper()]


@pytest.mark.parametrize(("path", "key"), FIELDS, ids=[".".join((*p, k)) for p, k in FIELDS])
def test_a_misspelt_key_in_any_section_is_refused_with_the_closest_valid_key(
    path: tuple[str, ...], key: str
) -> None:
    for typo in _typos(key):
        if typo in ExecutionConfig.model_fields or typo == key:
            continue
        where = ".".join((*path, typo))
        message = error_of(nest(path, typo, 1))
        assert message.startswith(f"{FILE}: {where}: unknown key"), message
        guess = closest_key((*path, typo))
        assert guess in ALL_PATHS  # always a real key the user can write
        assert f"did you mean {guess}?" in message
        if typo == key.upper():  # only the case differs: exactly that key
            assert guess == ".".join((*path, key))


@pytest.mark.parametrize(
    ("path", "key", "guess"),
    [
        (("risk",), "max_positons", "risk.max_positions"),
        (("risk",), "max_signals", "pipeline.max_signals"),  # under the wrong heading
        (("safety", "breaker"), "windo_s", "safety.breaker.window_s"),
        (("daemon", "schedule"), "pre_close", "daemon.schedule.pre_close_min"),
        (("alerts", "telegram"), "minlevel", "alerts.telegram.min_level"),
        ((), "Risk", "risk"),
        (("paper",), "starting_cash_usd", "paper.starting_cash"),
    ],
)
def test_did_you_mean_examples(path: tuple[str, ...], key: str, guess: str) -> None:
    message = error_of(nest(path, key, 1))
    assert message.startswith(f"{FILE}: {'.'.join((*path, key))}: unknown key; did you mean {guess}? (")


_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=25)


@given(st.sampled_from(SECTIONS), _NAME, st.one_of(st.integers(), st.booleans(), st.text(max_size=5)))
def test_any_unknown_key_in_any_section_is_an_error_naming_file_and_path(
    section: Any, key: str, value: Any
) -> None:
    path, model = section
    if key in {f.lower() for f in model.model_fields}:
        return
    message = error_of(nest(path, key, value))
    assert message.startswith(f"{FILE}: {'.'.join((*path, key))}: unknown key")
    assert "\n" not in message
    if "did you mean " in message:
        assert message.split("did you mean ", 1)[1].split("?", 1)[0] in ALL_PATHS


def test_joe_run_stops_on_an_unknown_nested_key_and_trades_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from joe.cli.main import app

    cfg = tmp_path / "execution.yaml"
    cfg.write_text("safety:\n  breaker:\n    windo_s: 60\n")
    monkeypatch.setenv("JOE_CONFIG", str(cfg))
    monkeypatch.setenv("JOE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRADING_MODE", raising=False)
    result = CliRunner().invoke(app, ["run", "--once"])
    assert result.exit_code == 2, result.output
    said = f"{cfg}: safety.breaker.windo_s: unknown key; did you mean safety.breaker.window_s?"
    assert said in result.output
    assert not (tmp_path / "data" / "reports").exists()
