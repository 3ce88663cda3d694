"""Packages whose `__init__` re-exports lazily (`joe.core.lazy`): every public name still resolves to
its submodule's object, unknown names still fail, submodules still import by `from package import`."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

LAZY = ("joe.store", "joe.reporting", "joe.reporting.alerts")
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.mark.parametrize("package", LAZY)
def test_every_public_name_resolves_to_its_submodules_object(package: str) -> None:
    pkg = importlib.import_module(package)
    assert pkg.__all__
    for name in pkg.__all__:
        value = getattr(pkg, name)
        origin = getattr(value, "__module__", None)
        if origin and origin.startswith("joe.") and origin != package:
            assert getattr(importlib.import_module(origin), name) is value, name
        assert name in dir(pkg)


@pytest.mark.parametrize("package", LAZY)
def test_an_unknown_name_is_still_an_attribute_error(package: str) -> None:
    pkg = importlib.import_module(package)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = pkg.no_such_name
    with pytest.raises(ImportError):
        exec(f"from {package} import no_such_name")


def test_from_imports_of_names_and_submodules_work_in_a_fresh_interpreter() -> None:
    """Fresh, so that nothing was loaded yet: the first `from joe.store import Store` loads it then."""
    code = (
        "import sys\n"
        "import joe.store.errors, joe.reporting.context, joe.reporting.alerts.formatting\n"
        "assert 'joe.store.repositories' not in sys.modules\n"
        "assert 'joe.reporting.generator' not in sys.modules\n"
        "from joe.store import Store, open_store, StoreError\n"
        "from joe.store.repositories import Store as S\n"
        "assert Store is S and 'sqlalchemy' in sys.modules\n"
        "from joe.reporting import ReportGenerator, charts\n"
        "assert charts.__name__ == 'joe.reporting.charts'\n"
        "from joe.reporting.alerts import AlertManager, Alert\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
