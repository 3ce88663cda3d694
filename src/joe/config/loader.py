"""Load and validate `config/execution.yaml`.

Errors are one line and name the file, the key path and what was expected, e.g.
`config/execution.yaml: risk.max_positions: expected an integer >= 0, got 'ten'`.
`load_execution_config` raises `ConfigError`; `load_execution_config_tolerant` (what the CLI and
the daemon use) returns safe defaults instead — `live.enabled` false, hence paper — plus the problem.
"""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel, ValidationError

from joe.config.schema import ExecutionConfig
from joe.core.events import AuditSink


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with (or notable about) the config file; `str()` is the one-line message."""

    file: str
    key: str  # dotted key path, "" when it concerns the whole file
    message: str
    # False for a notable but usable file (missing, empty): the defaults it yields are still what the
    # user has; True when the file says something Joe cannot use (a run must not trade on guesses).
    invalid: bool = True

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}" if self.key else f"{self.file}: {self.message}"


class ConfigError(ValueError):
    """`config/execution.yaml` is malformed or violates the schema. The message is one line."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__(_one_line("; ".join(str(p) for p in problems)))


def _one_line(text: str) -> str:
    return " ".join(text.split())


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps the last one,
    so a repeated risk limit would be read as whichever came last): raises `DuplicateKeyError`.
    Every YAML file Joe reads as settings (the config, a sweep file, a `--set` value) uses it."""


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping gives `key` twice: first on line `first_line`, again at `problem_mark` (1-based lines).
    `merge_line`: the line of the `<<` merge key that brought one of them in (None: both written out)."""

    def __init__(
        self,
        key: Any,
        first: yaml.Mark,
        again: yaml.Mark,
        merge_line: int | None = None,
        where: yaml.Mark | None = None,
    ) -> None:
        self.key = key
        self.first_line = first.line + 1
        self.line = again.line + 1
        self.merge_line = merge_line
        super().__init__(
            None,
            None,
            f"duplicate key {key!r} (first on line {self.first_line}{self.merged}); {DUPLICATE_HINT}",
            where or again,  # `where`: a mark inside the mapping, for the key's path (a merged key's own
        )  # mark is where its anchor was written)

    @property
    def merged(self) -> str:
        """', one of them merged in by `<<` on line N', or ''."""
        return "" if self.merge_line is None else f", one of them merged in by `<<` on line {self.merge_line}"


DUPLICATE_HINT = "YAML would silently keep only the last value: give the key once (delete or merge the other)"


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    # A `<<` merge key's mappings are flattened in first (as SafeLoader does): a key they share with each
    # other or with the mapping's own keys is a key given twice too (YAML would keep one silently).
    merges = [k.start_mark for k, _ in node.value if k.tag == "tag:yaml.org,2002:merge"]
    own = {id(k) for k, _ in node.value}
    loader.flatten_mapping(node)  # type: ignore[no-untyped-call]
    seen: dict[Any, yaml.Mark] = {}
    from_merge: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: construct_mapping says so as a YAML error
            continue
        merged = id(key_node) not in own
        if first is not None:
            again, later_merged = key_node.start_mark, merged
            if again.index < first.index:  # a merge put the later one first: name them in the file's order
                first, again, later_merged = again, first, key in from_merge
            line = merges[0].line + 1 if merged or key in from_merge else None
            raise DuplicateKeyError(key, first, again, line, merges[0] if later_merged else None)
        seen[key] = key_node.start_mark
        if merged:
            from_merge.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def yaml_key_path(text: str, stop: int) -> str:
    """Best-effort dotted key path open at character offset `stop` (for messages only)."""
    # Each frame: [is_mapping, current key or sequence index, expecting a key next]
    stack: list[list[Any]] = []

    def node_started() -> None:
        if stack and stack[-1][0]:
            stack[-1][2] = False
        elif stack:
            stack[-1][1] += 1

    def node_done() -> None:
        if stack and stack[-1][0]:
            stack[-1][2] = True

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            at = event.start_mark.index if event.start_mark is not None else -1
            # A block's end is marked at the token after it: one marked at `stop` ended before it
            # (a duplicate top-level key after a nested block is not inside that block).
            ends = isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent)
            if at > stop or (at == stop and not ends):
                break
            if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                if stack and stack[-1][0] and stack[-1][2]:
                    stack[-1][1] = event.value if isinstance(event, yaml.ScalarEvent) else "?"
                    stack[-1][2] = False
                else:
                    node_started()
                    node_done()
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                node_started()
                is_map = isinstance(event, yaml.MappingStartEvent)
                stack.append([is_map, None if is_map else -1, True])
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                stack.pop()
                node_done()
    except yaml.YAMLError:
        pass
    parts = [
        str(key) if is_map else f"[{key}]"
        for is_map, key, expecting in stack
        # a sequence whose first item has not started yet has index -1: no item to name
        if key is not None and not (is_map and expecting) and not (not is_map and key == -1)
    ]
    return ".".join(parts).replace(".[", "[")


def _yaml_problem(file: str, text: str, exc: yaml.YAMLError) -> ConfigProblem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = getattr(exc, "problem", None) or str(exc)
    key = yaml_key_path(text, mark.index if mark is not None else len(text))
    if isinstance(exc, DuplicateKeyError):
        key = f"{key}.{exc.key}" if key else str(exc.key)
    return ConfigProblem(file, key, _one_line(f"malformed YAML at {where}{what}"))


_CONSTRAINT_WORDS = (
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "<="),
    (annotated_types.Lt, "lt", "<"),
)


def _describe_type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe_type(a) for a in typing.get_args(annotation) if a is not type(None))
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "a mapping of " + ", ".join(annotation.model_fields)
        if issubclass(annotation, bool):
            return "true or false"
        if issubclass(annotation, int):
            return "an integer"
        if issubclass(annotation, float | Decimal):
            return "a number"
        if issubclass(annotation, str):
            return "a string"
    return str(annotation)


def _expected(loc: tuple[Any, ...]) -> str | None:
    """What the schema expects at `loc`, e.g. 'an integer >= 0'; None if `loc` is not a field."""
    model: Any = ExecutionConfig
    info = None
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        model = info.annotation
    if info is None:
        return None
    words = [_describe_type(info.annotation)]
    for meta in info.metadata:
        for cls, attr, symbol in _CONSTRAINT_WORDS:
            if isinstance(meta, cls):
                words.append(f"{symbol} {getattr(meta, attr)}")
    return " ".join(words[:1]) + (" " + " and ".join(words[1:]) if len(words) > 1 else "")


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The schema section (model) at key path `loc` (() is the whole file); None if not a section."""
    model: Any = ExecutionConfig
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = model.model_fields[part].annotation
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _all_key_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path of the schema below `model`, sections included."""
    out: list[tuple[str, ...]] = []
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        out.append(path)
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            out += _all_key_paths(sub, path)
    return out


def closest_key(loc: tuple[Any, ...]) -> str | None:
    """The valid key path closest to the unknown key at `loc` ("did you mean"), or None.

    The same name in another case, else the same name in another section (a key put under the
    wrong heading, e.g. `risk.max_signals` → `pipeline.max_signals`), else a key of the same
    section spelled alike (case-insensitive, difflib ratio >= 0.6).
    """
    name, section = str(loc[-1]).lower(), tuple(map(str, loc[:-1]))
    parent = _model_at(loc[:-1])
    lowered = {f.lower(): f for f in parent.model_fields} if parent is not None else {}
    if name in lowered:  # only the case differs
        return ".".join((*section, lowered[name]))
    elsewhere = [p for p in _all_key_paths(ExecutionConfig) if p[-1].lower() == name]
    if elsewhere:
        return ".".join(elsewhere[0])
    hit = difflib.get_close_matches(name, list(lowered), n=1, cutoff=0.6)
    return ".".join((*section, lowered[hit[0]])) if hit else None


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_problems(file: str, exc: ValidationError) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            parent = _expected(loc[:-1]) if len(loc) > 1 else _describe_type(ExecutionConfig)
            allowed = parent.removeprefix("a mapping of ") if parent else "see schema"
            guess = closest_key(loc)
            hint = f"; did you mean {guess}?" if guess else ""
            message = f"unknown key{hint} (allowed here: {allowed})"
        elif err["type"] == "invalid_key":
            key = ".".join(str(p) for p in loc[:-1])
            message = f"keys must be names, got {_got(loc[-1])}"
        elif err["type"] == "value_error":  # a validator's own words (e.g. an unknown exchange)
            message = str(err["msg"]).removeprefix("Value error, ")
        else:
            expected = _expected(loc) or err["msg"]
            got = "" if err["type"] == "missing" else f", got {_got(err.get('input'))}"
            message = f"expected {expected}{got}"
        problems.append(ConfigProblem(file, key, _one_line(message)))
    return problems


def parse_execution_config(text: str, file: str = "config/execution.yaml") -> ExecutionConfig:
    """Validate YAML text against the schema; raises `ConfigError` (one line) on any problem."""
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(file, text, exc)]) from None
    if data is None:
        data = {}  # an empty file means "all defaults" (`load_execution_config` says so)
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigProblem(file, "", f"expected a mapping at top level, got {type(data).__name__}")]
        )
    try:
        return ExecutionConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_schema_problems(file, exc)) from None


def load_execution_config(path: Path | str) -> tuple[ExecutionConfig, list[ConfigProblem]]:
    """Load the yaml at `path`. Missing file → defaults plus a note; invalid → `ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ExecutionConfig(), [
            ConfigProblem(str(path), "", "file not found; using safe defaults (paper)", invalid=False)
        ]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [ConfigProblem(str(path), "", f"cannot read file ({type(exc).__name__})")]
        ) from None
    config = parse_execution_config(text, str(path))
    if not text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    ):
        return config, [
            ConfigProblem(
                str(path), "", "file is empty; using the built-in defaults for every key", invalid=False
            )
        ]
    return config, []


def load_execution_config_tolerant(
    path: Path | str, audit: AuditSink | None = None
) -> tuple[ExecutionConfig, list[ConfigProblem]]:
    """Like `load_execution_config` but never raises: on error, safe defaults (paper) plus problems.

    The load is audited as `config.loaded` (path, sha256 of the file, problems) when `audit` is given.
    """
    path = Path(path)
    try:
        config, problems = load_execution_config(path)
    except ConfigError as exc:
        config, problems = ExecutionConfig(), list(exc.problems)
    except Exception as exc:  # never let config loading stop the paper path
        config, problems = (
            ExecutionConfig(),
            [ConfigProblem(str(path), "", f"cannot load ({type(exc).__name__})")],
        )
    if audit is not None:
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        except OSError:
            digest = None
        try:
            audit.record(
                "config.loaded",
                {
                    "path": str(path),
                    "sha256": digest,
                    "valid": not problems,
                    "problems": [str(p) for p in problems],
                },
            )
        except Exception:
            pass  # the mode resolver audits again and fails closed if the sink is broken
    return config, problems
