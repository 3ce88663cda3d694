"""The roadmap's compatible entry point: `python main.py --once [--broker capital] [--push]`.

It is `joe run` with the same options. Run it with the project's virtualenv
(`.venv/bin/python main.py --once`, after `make install`); any other Python without Joe's
dependencies gets one line saying so (exit 1) instead of a traceback.
"""

import sys
from pathlib import Path

HINT = (
    "main.py needs Joe's dependencies ({missing} is not installed for {python}): run `make install`, "
    "then `.venv/bin/python main.py {args}` (or `.venv/bin/joe run {args}`)"
)


def _app():  # type: ignore[no-untyped-def]
    try:
        from joe.cli.main import app
    except ModuleNotFoundError as exc:
        if exc.name != "joe" and not (exc.name or "").startswith("joe."):
            raise
        # Running from a checkout without `pip install -e .`: use the sources next to this file.
        sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
        from joe.cli.main import app
    return app


if __name__ == "__main__":
    try:
        app = _app()
    except ModuleNotFoundError as exc:
        args = " ".join(sys.argv[1:]) or "--once"
        print(HINT.format(missing=exc.name, python=sys.executable, args=args), file=sys.stderr)
        sys.exit(1)
    app(args=["run", *sys.argv[1:]], prog_name="main.py")
