"""`python -m build` makes a wheel that works installed anywhere: a fresh virtualenv gets the wheel, and
the web app and the `vram` console script run from an empty folder (nothing from this checkout)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.installed import MISSING, free_port, fresh_venv, pip_install, run, serving

ROOT = Path(__file__).resolve().parent.parent
DATA = ("model_specs", "templates", "static")


def _files(folder: str) -> set[str]:
    """Every file under `folder` but caches and dotfiles (.gitignore: not data)."""
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")}


def _data_files() -> set[str]:
    return set().union(*map(_files, DATA))


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    return out


def test_wheel_and_sdist_carry_every_data_file(dist: Path):
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert {f"app/{name}" for name in _data_files()} <= in_wheel
    assert _files("app") <= in_wheel  # code and the files beside it (app/measure/device_run.sh)
    assert "app/cli/__init__.py" in in_wheel
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in in_wheel if n.endswith("entry_points.txt")))
    assert b"vram = app.cli:main" in entry_points
    with tarfile.open(sdist) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert _data_files() | {"setup.py", "pyproject.toml", "README.md"} <= in_sdist


def test_installed_wheel_runs_from_another_folder(dist: Path, tmp_path: Path):
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, str(next(dist.glob("*.whl"))))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert run(python, [str(python), "-c", MISSING], elsewhere).stdout == ""
    where = run(python, [str(python), "-c", "import app.catalog as c; print(c.__file__, c.SPECS_DIR)"], elsewhere)
    assert where.returncode == 0 and all(Path(p).is_relative_to(tmp_path / "venv") for p in where.stdout.split())

    port = free_port()
    cmd = [str(python), "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
    with serving(python, cmd, elsewhere, port) as base:
        assert httpx.get(f"{base}/healthz").json()["models"] == len(list((ROOT / "model_specs/models").glob("*.json")))
        card = httpx.get(f"{base}/models/glm-4v-9b")
        assert card.status_code == 200 and "GLM-4V-9B" in card.text and "/static/" in card.text
        assert httpx.get(f"{base}/static/app.css").status_code == 200
        state = {"model": "glm-4v-9b", "quantization": "q4_k_m", "context": "8192"}
        api = httpx.get(f"{base}/api/vram", params=state).json()
        multipart = httpx.post(f"{base}/api/vram", files={k: (None, v) for k, v in state.items()})
        assert multipart.status_code == 200 and multipart.json() == api

    vram = str(python.parent / "vram")
    out = run(python, [vram, "estimate", "glm-4v-9b", "--quantization", "q4_k_m", "--context", "8192", "--json"],
              elsewhere)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["total_bytes"] == api["total_bytes"]
    assert json.loads(out.stdout) == api
    listing = run(python, [vram, "models"], elsewhere)
    assert listing.returncode == 0 and "glm-4v-9b" in listing.stdout
    fit = run(python, [vram, "fit", "llama-3.1-8b", "--memory", "24GiB", "--quantization", "q4_k_m"], elsewhere)
    assert fit.returncode == 0 and "q4_k_m" in fit.stdout, fit.stderr
    missing = run(python, [vram, "estimate", "gpt-5"], elsewhere)
    assert missing.returncode == 3 and "unknown model 'gpt-5'" in missing.stderr
