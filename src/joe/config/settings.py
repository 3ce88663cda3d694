"""Process settings from the environment (and an optional `.env` file).

Everything that is per-machine or secret lives here; everything that is policy lives in
`config/execution.yaml` (see `joe.config.schema`). Loading settings never raises: a bad value
is dropped to its safe default and a human-readable reason is kept in `Settings.problems`, so
the mode resolver can refuse live (principle 2: contradictory configuration resolves to paper).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

BrokerName = Literal["sim", "capital", "ibkr"]
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Values used instead of the field default when an env value is invalid. CAPITAL_DEMO that cannot
# be parsed must never fall through to a yaml `demo: false` (real money): treat it as demo.
_INVALID_FALLBACK: dict[str, Any] = {"capital_demo": True}

# Set while `load_settings` builds a Settings from an explicit mapping, so that the env source
# below does not also read the real process environment.
_EXPLICIT: ContextVar[bool] = ContextVar("joe_settings_explicit", default=False)


def _env(name: str, default: Any = None, **kw: Any) -> Any:
    return Field(default, validation_alias=name, **kw)


class Settings(BaseSettings):
    """Per-process settings. Build with `load_settings()`; `Settings()` is equally tolerant."""

    model_config = SettingsConfigDict(
        case_sensitive=False, populate_by_name=True, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    trading_mode: str = _env("TRADING_MODE", "")  # raw; normalised by joe.config.mode
    broker: BrokerName = _env("JOE_BROKER", "sim")
    data_dir: Path = _env("JOE_DATA_DIR", Path("data"))
    db_url: str | None = _env("JOE_DB_URL")
    config_path: Path = _env("JOE_CONFIG", Path("config/execution.yaml"))
    live_confirm: str | None = _env("JOE_LIVE_CONFIRM")
    log_level: str = _env("JOE_LOG_LEVEL", "INFO")
    log_json: bool = _env("JOE_LOG_JSON", False)

    capital_api_key: SecretStr | None = _env("CAPITAL_API_KEY")
    capital_identifier: str | None = _env("CAPITAL_IDENTIFIER")
    capital_password: SecretStr | None = _env("CAPITAL_PASSWORD")
    capital_demo: bool | None = _env("CAPITAL_DEMO")  # None: use yaml brokers.capital.demo
    capital_account_id: str | None = _env("CAPITAL_ACCOUNT_ID")
    capital_api_url: str | None = _env("CAPITAL_API_URL")
    capital_stream_url: str | None = _env("CAPITAL_STREAM_URL")

    ibkr_host: str | None = _env("IBKR_HOST")
    ibkr_port: int | None = _env("IBKR_PORT", None, ge=1, le=65535)  # None: yaml brokers.ibkr.port
    ibkr_client_id: int | None = _env("IBKR_CLIENT_ID", None, ge=0)
    ibkr_account: str | None = _env("IBKR_ACCOUNT")

    gemini_api_key: SecretStr | None = _env("GEMINI_API_KEY")
    gemini_base_url: str | None = _env("GEMINI_BASE_URL")
    telegram_bot_token: SecretStr | None = _env("TELEGRAM_BOT_TOKEN")
    telegram_chat_id: str | None = _env("TELEGRAM_CHAT_ID")
    # `joe telegram`: comma-separated Telegram user ids allowed to ask/confirm /halt /reduce /flatten
    # /resume (unset: any member of an allowed chat, confirming only their own request)
    telegram_user_ids: str | None = _env("TELEGRAM_USER_IDS")
    telegram_api_url: str | None = _env("TELEGRAM_API_URL")
    discord_webhook_url: SecretStr | None = _env("DISCORD_WEBHOOK_URL")

    # Filled by the loader, never from the environment: why a value was dropped or contradicted.
    problems: tuple[str, ...] = Field(default=(), validation_alias="problems")
    # Filled by the loader: env var name -> where its value came from ("env" or ".env"); a variable
    # not listed was not set (the yaml or the built-in default applies). See `joe.config.provenance`.
    sources: dict[str, str] = Field(default_factory=dict, validation_alias="sources")

    @field_validator("broker", mode="before")
    @classmethod
    def _norm_broker(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("log_level", mode="before")
    @classmethod
    def _norm_level(cls, v: Any) -> Any:
        level = str(v).strip().upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}")
        return level

    @property
    def database_url(self) -> str:
        """`JOE_DB_URL`, or the SQLite file `<data_dir>/joe.db`."""
        return self.db_url or f"sqlite:///{self.data_dir / 'joe.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Replace pydantic-settings' strict env/.env sources with the tolerant one below.
        return (init_settings, _TolerantEnvSource(settings_cls))


def env_names() -> dict[str, str]:
    """Field name → environment variable name for every settable field."""
    out: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, str) and name not in ("problems", "sources"):
            out[name] = alias
    return out


SECRET_FIELDS = frozenset(
    name for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation)
)


def clash_problem(env_name: str) -> str:
    """The problem said when `env_name` is set more than once in different letter case to different
    values (`TRADING_MODE=paper` beside `trading_mode=live`): contradictory configuration."""
    return f"{env_name} is set more than once with different letter case and values"


def _gather(
    environ: Mapping[str, str], dotenv: Mapping[str, str | None], origins: dict[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """Pick each known variable case-insensitively; the process env wins over `.env`.

    `origins` (if given) receives env var name -> "env" / ".env" for every variable picked."""
    problems: list[str] = []
    merged: dict[str, str] = {}
    for origin, source in ((".env", dotenv), ("env", environ)):  # later source wins
        by_lower: dict[str, list[tuple[str, str]]] = {}
        for key, value in source.items():
            if value is not None:
                by_lower.setdefault(key.lower(), []).append((key, value))
        for field, env_name in env_names().items():
            hits = by_lower.get(env_name.lower())
            if not hits:
                continue
            exact = [v for k, v in hits if k == env_name]
            if len({v for _, v in hits}) > 1:
                # e.g. both TRADING_MODE and trading_mode set, to different values.
                problems.append(clash_problem(env_name))
            merged[field] = exact[0] if exact else hits[0][1]
            if origins is not None:
                origins[env_name] = origin
    # Spellings that differ in case across the two sources contradict each other too (e.g. .env has
    # TRADING_MODE=shadow, the shell trading_mode=live): the same name in both is the normal override.
    for env_name in env_names().values():
        spelled: dict[str, set[str]] = {}
        for source in (dotenv, environ):
            for key, value in source.items():
                if value is not None and key.lower() == env_name.lower():
                    spelled.setdefault(key, set()).add(value)
        values = set().union(*spelled.values()) if spelled else set()
        clash = clash_problem(env_name)
        if len(spelled) > 1 and len(values) > 1 and clash not in problems:
            problems.append(clash)
    return merged, problems


def _describe(field: str, value: str) -> str:
    if field in SECRET_FIELDS:
        return "(secret value hidden)"
    shown = value if len(value) <= 40 else value[:37] + "..."
    return repr(shown)


def _build(raw: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """Validate `raw` field by field, dropping bad values; returns kwargs for `Settings`."""
    values: dict[str, Any] = {}
    for field, value in raw.items():
        if field != "trading_mode" and not value.strip():
            continue  # an empty variable means "not set" (TRADING_MODE keeps its raw value)
        values[field] = value
    names = env_names()
    token = _EXPLICIT.set(True)
    try:
        for _ in range(len(values) + 1):
            try:
                Settings(**values)
                break
            except ValidationError as exc:
                bad: set[str] = set()
                for err in exc.errors():
                    loc = str(err["loc"][0]) if err["loc"] else ""
                    field = next((f for f, a in names.items() if loc in (f, a)), loc)
                    if field in values and field not in bad:
                        bad.add(field)
                        got = _describe(field, str(values[field]))
                        fallback = _INVALID_FALLBACK.get(field)
                        using = "the default" if fallback is None else repr(fallback).lower()
                        problems.append(f"{names.get(field, field)}: {err['msg']}, got {got}; using {using}")
                for field in bad:
                    values.pop(field)
                    if field in _INVALID_FALLBACK:
                        values[field] = _INVALID_FALLBACK[field]
                if not bad:  # an error we cannot attribute: keep only the mode request
                    problems.append(f"settings invalid: {exc.error_count()} error(s)")
                    values = {k: v for k, v in values.items() if k == "trading_mode"}
    finally:
        _EXPLICIT.reset(token)
    return values


class _TolerantEnvSource(PydanticBaseSettingsSource):
    """Reads os.environ + ./.env tolerantly (used when `Settings()` is called directly)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ does the work

    def __call__(self) -> dict[str, Any]:
        if _EXPLICIT.get():
            return {}
        origins: dict[str, str] = {}
        values, problems = _collect(os.environ, Path(".env"), origins)
        return {**values, "problems": tuple(problems), "sources": origins}


def _read_dotenv(env_file: Path, problems: list[str]) -> Mapping[str, str | None]:
    """`.env` values, line by line: a line that is not UTF-8 is dropped and named in `problems`
    (one bad byte must not silently drop the whole file)."""
    good: list[str] = []
    for n, raw in enumerate(env_file.read_bytes().splitlines(), start=1):
        try:
            good.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            name = raw.split(b"=", 1)[0].strip().decode("ascii", "replace") if b"=" in raw else "?"
            problems.append(
                f"{env_file}: line {n} (variable {name}) is not UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                f"{exc.start + 1}); that line is ignored, save the file as UTF-8"
            )
    return dotenv_values(stream=io.StringIO("\n".join(good) + "\n"))


def _collect(
    environ: Mapping[str, str], env_file: Path | None, origins: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    dotenv: Mapping[str, str | None] = {}
    problems: list[str] = []
    if env_file is not None and env_file.is_file():
        try:
            dotenv = _read_dotenv(env_file, problems)
        except OSError as exc:
            problems.append(f"{env_file}: cannot read ({type(exc).__name__}); ignored")
    raw, gather_problems = _gather(environ, dotenv, origins)
    problems.extend(gather_problems)
    return _build(raw, problems), problems


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Build `Settings` without ever raising.

    With `environ=None` the process environment is used and `./.env` (if present) fills in
    what it does not set. With an explicit `environ`, only `env_file` (if given) is added, so
    tests and tools see exactly what they pass.
    """
    if environ is None:
        environ = os.environ
        if env_file is None:
            env_file = Path(".env")
    origins: dict[str, str] = {}
    values, problems = _collect(environ, env_file, origins)
    origins = {  # only values in use: an empty variable means "not set", a dropped value is not used
        name: (f".env ({env_file})" if origin == ".env" else origin)
        for name, origin in origins.items()
        if any(env_names().get(f) == name for f in values)
    }
    token = _EXPLICIT.set(True)
    try:
        try:
            return Settings(**values, problems=tuple(problems), sources=origins)
        except Exception as exc:  # belt and braces: _build already validated every field
            problems.append(f"settings invalid ({type(exc).__name__}); using defaults")
            return Settings(problems=tuple(problems))
    finally:
        _EXPLICIT.reset(token)


def secret_value(value: SecretStr | str | None) -> str | None:
    """The plain text of a secret setting (stripped), or None when unset or empty.

    Only for handing a credential to the client that sends it; never log or store the result.
    """
    if value is None:
        return None
    raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return raw.strip() or None
