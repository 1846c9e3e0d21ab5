"""Helpers for tests of the installed project: a fresh virtualenv, an install, a served app.

The virtualenv sees the system's site-packages (the heavy dependencies are not downloaded again), but
the project itself is installed into it from a wheel or a source folder, and every command runs from
an empty folder with no PYTHONPATH, so nothing can come from this checkout.
"""

from __future__ import annotations

import os
import site
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def fresh_venv(path: Path) -> Path:
    """A new virtualenv at `path` that also sees this interpreter's site-packages (after its own, so what
    is installed into it comes first); returns its python.

    `--system-site-packages` alone would show only the base interpreter's packages when the tests run in
    a virtualenv themselves (as .ci/run does), so a .pth file names this environment's directories too.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(path)], check=True)
    [own] = path.glob("lib/python3*/site-packages")
    (own / "_outer_site_packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return path / "bin" / "python"


def pip_install(python: Path, target: str) -> None:
    """Install `target` (a wheel or a source folder) into `python`'s environment with this pip; the
    project only: its dependencies are checked separately (see `missing_requirements`)."""
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--ignore-installed", "--no-build-isolation", "--disable-pip-version-check", target],
                   check=True, capture_output=True, timeout=300)


def clean_env(python: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{python.parent}:/usr/bin:/bin"
    env["VIRTUAL_ENV"] = str(python.parent.parent)
    return env


def run(python: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=clean_env(python), capture_output=True, text=True, timeout=300)


MISSING = """
import importlib.metadata as md
from packaging.requirements import Requirement
for line in md.requires("vram-calculator") or []:
    r = Requirement(line)
    if r.marker and not r.marker.evaluate({"extra": ""}):
        continue
    try:
        v = md.version(r.name)
    except md.PackageNotFoundError:
        print(r.name, "not installed"); continue
    if not r.specifier.contains(v, prereleases=True):
        print(r.name, v, "does not satisfy", r.specifier)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(python: Path, args: list[str], cwd: Path, port: int) -> Iterator[str]:
    """Run a server command in `cwd`; yield its base URL once /healthz answers; stop it after."""
    log = cwd.parent / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=clean_env(python), stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert proc.poll() is None, log.read_text()
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
