"""The committed locks (requirements/*.txt, written by scripts/lock) agree with pyproject.toml's ranges, and
the README's two commands and .ci/run install from them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# lock file -> the extras it was compiled for (scripts/lock)
LOCKS = {"app.txt": (), "test.txt": ("test",), "ci.txt": ("test", "measure"),
         "llamacpp.txt": ("test", "measure", "llamacpp")}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)(?:\[[^\]]*\])?==(\S+)")


def pins(name: str) -> dict[str, Version]:
    out = {}
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        if m := PIN.match(line):
            out[canonicalize_name(m[1])] = Version(m[2])
    return out


def direct(extras: tuple[str, ...]) -> list[Requirement]:
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]]
    return reqs


@pytest.mark.parametrize(("lock", "extras"), LOCKS.items())
def test_every_direct_dependency_is_pinned_within_its_range(lock: str, extras: tuple[str, ...]):
    locked = pins(lock)
    for req in direct(extras):
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} ({'+'.join(extras) or 'app'}) is not in requirements/{lock}"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"requirements/{lock} pins {req.name}=={locked[name]}, outside pyproject.toml's {req}: run scripts/lock")


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_has_a_hash(lock: str):
    text = (ROOT / "requirements" / lock).read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    for block in blocks:
        if PIN.match(block):
            assert "--hash=sha256:" in block, f"requirements/{lock}: {block.splitlines()[0]} has no hash"


def test_one_version_per_package_across_locks():
    """scripts/lock resolves ci.txt first and the others under it: a package has one version everywhere."""
    seen: dict[str, tuple[str, Version]] = {}
    for lock in LOCKS:
        for name, version in pins(lock).items():
            if name in seen:
                assert seen[name][1] == version, f"{name}: {seen[name][0]} has {seen[name][1]}, {lock} {version}"
            seen.setdefault(name, (lock, version))


def test_readme_and_ci_install_from_the_lock():
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements/app.txt && pip install --no-deps -e . && uvicorn app.main:app" in readme
    assert "pip install -r requirements/test.txt && pip install --no-deps -e . && python -m pytest" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "-r requirements/ci.txt" in ci and "--no-deps" in ci
    assert "--system-site-packages" not in ci  # nothing from outside the lock
