"""Wire helpers of the simulator: the request log entry, garbage bodies and the activity filter."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordedRequest:
    """One request the simulator saw. Header values that are secrets are recorded only as present/absent."""

    ts: float
    method: str
    path: str
    query: dict[str, str]
    body: Any
    auth: dict[str, bool]
    status: int = 0
    error_code: str = ""
    fault: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def corrupt(body: Any, kind: str) -> str:
    """Garbage in a 200: invalid JSON, an HTML page, fields missing or values of the wrong type."""
    if kind == "invalid_json":
        return json.dumps(body)[: max(1, len(json.dumps(body)) // 2)]
    if kind == "html":
        return "<html><body>Service temporarily unavailable</body></html>"

    def strip(obj: Any) -> Any:
        if isinstance(obj, dict):
            if len(obj) == 1 and isinstance(next(iter(obj.values())), list):
                k = next(iter(obj))
                return {k: [strip(x) for x in obj[k]] or [{}]}
            return dict(list(obj.items())[2:])
        return obj

    def retype(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: retype(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [retype(v) for v in obj] or [{"x": "?"}]
        if isinstance(obj, bool):
            return "maybe"
        if isinstance(obj, int | float):
            return "n/a"
        if isinstance(obj, str):
            return {"unexpected": obj}
        return obj

    return json.dumps(strip(body) if kind == "missing_fields" else retype(body))


def fiql_ok(row: dict[str, Any], fiql: str) -> bool:
    """Evaluate the activity filter: clauses joined by `;`, `==` / `!=`, values separated by `,`."""
    for clause in filter(None, fiql.split(";")):
        neg = "!=" in clause
        key, _, values = clause.partition("!=" if neg else "==")
        if (str(row.get(key.strip(), "")) in values.split(",")) == neg:
            return False
    return True
