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


def markdown_table() -> str:
    """The yaml key table as Markdown."""
    rows = ["| key | default |", "|---|---|"]
    rows += [f"| `{k}` | `{v}` |" for k, v, _ in yaml_keys()]
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
