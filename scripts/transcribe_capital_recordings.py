"""Transcribe the recorded examples of Capital.com's official Postman collection into JSON fixtures.

Usage::

    python scripts/transcribe_capital_recordings.py PATH/TO/capital.collection.json [OUT_DIR]

Source: github.com/capital-com-sv/capital-api-postman, `capital.collection.json` (MIT licence).
Each saved example ("response") becomes `OUT_DIR/<request>--<example>.json` holding the request
(method, path template, query, body), the HTTP status, the headers that matter to a client (`Date`,
`CST`, `X-SECURITY-TOKEN`, `Content-Length`, `Content-Type`, `Access-Control-Expose-Headers`; the
browser-security boilerplate is dropped) and the body, parsed as JSON. The default OUT_DIR is the
contract suite's `tests/capital/fixtures/recorded/`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

KEEP_HEADERS = (
    "Date",
    "Content-Type",
    "Content-Length",
    "CST",
    "X-SECURITY-TOKEN",
    "Access-Control-Expose-Headers",
)
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "capital" / "fixtures" / "recorded"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def split_url(raw: str) -> tuple[str, dict[str, str]]:
    """`{{url}}/prices/:epic?resolution=MINUTE` or an absolute demo URL → (path template, query)."""
    path, _, query = raw.partition("?")
    for prefix in ("{{url}}", "/api/v1"):
        if prefix in path:
            path = path.split(prefix, 1)[1]
    path = "/" + path.strip("/")
    return path, dict(parse_qsl(query, keep_blank_values=True))


def examples(collection: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def walk(items: list[dict[str, Any]], folder: str) -> None:
        for item in items:
            if "item" in item:
                walk(item["item"], f"{folder}/{item['name']}".strip("/"))
                continue
            for resp in item.get("response", []):
                req = resp.get("originalRequest") or item["request"]
                url = req["url"]["raw"] if isinstance(req["url"], dict) else req["url"]
                path, query = split_url(url)
                headers: dict[str, str] = {}
                for h in resp.get("header") or []:
                    if h["key"] in KEEP_HEADERS:
                        headers[h["key"]] = h["value"]
                body_text = resp.get("body") or ""
                sent = (req.get("body") or {}).get("raw") or ""
                try:
                    sent_body: Any = json.loads(sent) if sent.strip() else None
                except ValueError:
                    sent_body = sent  # a Postman template such as {{dealId}}
                out.append(
                    {
                        "source": {
                            "repo": "capital-com-sv/capital-api-postman",
                            "file": "capital.collection.json",
                            "licence": "MIT",
                            "folder": folder,
                            "request": item["name"],
                            "example": resp["name"],
                        },
                        "request": {"method": req["method"], "path": path, "query": query, "body": sent_body},
                        "status": resp["code"],
                        "headers": headers,
                        "body": json.loads(body_text) if body_text.strip() else None,
                    }
                )

    walk(collection["item"], "")
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    collection = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    out_dir = Path(argv[2]) if len(argv) > 2 else DEFAULT_OUT
    out_dir.mkdir(parents=True, exist_ok=True)
    for ex in examples(collection):
        name = f"{slug(ex['source']['request'])}--{slug(ex['source']['example'])}.json"
        (out_dir / name).write_text(json.dumps(ex, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
