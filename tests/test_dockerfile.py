"""The image cannot be built here (no Docker engine), so do what it does: copy exactly the files it
copies, install them as its RUN line does (into a fresh virtualenv), and run its command from its
empty working directory; the app must serve its pages, API and static files from the installed package."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx

from tests.installed import MISSING, free_port, fresh_venv, pip_install, run, serving

ROOT = Path(__file__).resolve().parent.parent


def _dockerfile() -> dict:
    steps: dict = {"copy": [], "run": [], "workdir": "/", "cmd": []}
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        word, _, rest = line.partition(" ")
        if word == "COPY":
            *sources, dest = rest.split()
            steps["copy"].append((sources, dest))
        elif word == "RUN":
            steps["run"].append(rest)
        elif word == "WORKDIR":
            steps["workdir"] = rest
        elif word == "CMD":
            steps["cmd"] = json.loads(rest)
    return steps


def _copy(sources: list[str], dest: str, root: Path) -> None:
    target = root / dest.lstrip("/")
    for name in sources:
        src = ROOT / name
        to = target / src.name if dest.endswith("/") else target
        if src.is_dir():
            shutil.copytree(src, to, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, to)


def test_dockerfile_installs_the_copied_files_and_serves_from_an_empty_workdir(tmp_path: Path):
    steps = _dockerfile()
    image = tmp_path / "image"
    for sources, dest in steps["copy"]:
        _copy(sources, dest, image)
    [install] = steps["run"]
    m = re.fullmatch(r"pip install --no-cache-dir (\S+) && rm -rf \1", install)
    assert m, install
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, str(image / m.group(1).lstrip("/")))
    shutil.rmtree(image / m.group(1).lstrip("/"))  # as the RUN line does: the source is gone
    workdir = image / steps["workdir"].lstrip("/")
    workdir.mkdir(parents=True)
    assert run(python, [str(python), "-c", MISSING], workdir).stdout == ""
    where = run(python, [str(python), "-c", "import app.catalog as c; print(c.__file__, c.SPECS_DIR)"], workdir)
    assert all(Path(p).is_relative_to(tmp_path / "venv") for p in where.stdout.split()), where

    cmd = steps["cmd"]
    assert cmd[:3] == ["python", "-m", "app.main"]  # checks the catalog before uvicorn starts any worker
    port = free_port()
    args = [a if a != "8000" else str(port) for a in cmd[1:]]
    args[args.index("0.0.0.0")] = "127.0.0.1"  # the test binds to loopback only
    with serving(python, [str(python), *args], workdir, port) as base:
        health = httpx.get(f"{base}/healthz").json()
        assert health["models"] == len(list((ROOT / "model_specs" / "models").glob("*.json")))
        card = httpx.get(f"{base}/models/glm-4v-9b")
        assert card.status_code == 200 and "GLM-4V-9B" in card.text
        htmx = next(p.name for p in (ROOT / "static").glob("htmx-*.js"))
        assert httpx.get(f"{base}/static/{htmx}").status_code == 200
