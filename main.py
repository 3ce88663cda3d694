"""The roadmap's compatible entry point: `python main.py --once [--broker capital] [--push]`.

It is `joe run` with the same options (run it with the project's virtualenv, e.g. `.venv/bin/python`).
"""

import sys
from pathlib import Path

try:
    from joe.cli.main import app
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from joe.cli.main import app

if __name__ == "__main__":
    app(args=["run", *sys.argv[1:]], prog_name="main.py")
