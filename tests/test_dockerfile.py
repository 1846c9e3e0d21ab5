"""The image cannot be built here (no Docker engine), so check what it would do: the files it copies
are enough, and the command it runs serves the app."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _dockerfile() -> tuple[list[str], list[str]]:
    copies, cmd = [], []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            copies += line.split()[1:-1]
        elif line.startswith("CMD "):
            cmd = json.loads(line[4:])
    return copies, cmd


def test_dockerfile_command_serves_the_app_from_the_copied_files(tmp_path: Path):
    copies, cmd = _dockerfile()
    assert cmd[:2] == ["uvicorn", "app.main:app"]
    for name in copies:  # exactly what the image gets
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    args = [a if a != "8000" else port for a in cmd[1:]]
    args[args.index("0.0.0.0")] = "127.0.0.1"  # the test binds to loopback only
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", *args], cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)})
    try:
        for _ in range(100):
            assert proc.poll() is None, log.read_text()
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert r.json()["models"] >= 9
        card = httpx.get(f"http://127.0.0.1:{port}/models/glm-4v-9b")
        assert card.status_code == 200 and "GLM-4V-9B" in card.text
        assert httpx.get(f"http://127.0.0.1:{port}/static/htmx-2.0.4.min.js").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
