"""Layering rules: the estimator stays pure, the web app never loads the GPU harness."""

from __future__ import annotations

import subprocess
import sys

import app.estimator as estimator


def _modules_after(import_line: str) -> set[str]:
    code = f"import sys; {import_line}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {m.split(".")[0] for m in out.split()}


def test_estimator_imports_no_web_framework():
    assert not _modules_after("import app.estimator") & {"fastapi", "starlette", "jinja2", "uvicorn"}


def test_web_app_never_imports_the_measure_harness():
    loaded = _modules_after("import app.main")
    assert "torch" not in loaded and "transformers" not in loaded
    out = subprocess.run([sys.executable, "-c", "import sys, app.main; print('app.measure' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_all_is_sorted_and_complete():
    names = estimator.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    public = {n for n in dir(estimator) if not n.startswith("_") and not isinstance(getattr(estimator, n),
                                                                                   type(estimator))}
    assert public == set(names)
