"""The configuration reference (every `config/execution.yaml` key with its default), generated from
the schema so the README's table can be checked against the code."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from joe.config.schema import ExecutionConfig


def yaml_keys(
    model: type[BaseModel] = ExecutionConfig, prefix: str = ""
) -> Iterator[tuple[str, object, str]]:
    """Yield (dotted key, default, description) for every leaf key of the schema."""
    instance = model()
    for name, field in model.model_fields.items():
        value = getattr(instance, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from yaml_keys(type(value), key + ".")
        else:
            yield key, value, field.description or ""


def allowed(key: str) -> str:
    """The allowed range of a numeric key as the schema bounds it (">= 1 and <= 300"), "" otherwise."""
    from joe.config.loader import _expected

    words = _expected(tuple(key.split("."))) or ""  # "an integer >= 0 and <= 1000"
    at = min((i for i in (words.find(" >"), words.find(" <")) if i >= 0), default=-1)
    return words[at + 1 :] if at >= 0 else ""


def markdown_table() -> str:
    """The yaml key table as Markdown (a number's allowed range in the third column)."""
    rows = ["| key | default | allowed |", "|---|---|---|"]
    rows += [f"| `{k}` | `{v}` | {allowed(k)} |".replace(" |  |", " | |") for k, v, _ in yaml_keys()]
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
