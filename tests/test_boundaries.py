"""Layering rules (ARCHITECTURE.md): the estimator stays pure, the web app never loads the GPU harness,
each package imports only what ARCHITECTURE.md says it may."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import app
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


# --- the import rules of ARCHITECTURE.md, read from the source with ast (module- and function-level) ---
APP = Path(app.__file__).resolve().parent
SHARED = ("app.problems", "app.resources", "app.units")  # shared helpers, the only loose modules besides main
PACKAGES = ("app.estimator", "app.catalog", "app.hub", "app.logs", "app.web", "app.cli", "app.measure")
# what each part may import from app (besides itself); ARCHITECTURE.md states the same table
MAY_IMPORT = {
    "app.estimator": set(),
    "app.catalog": {"app.estimator", "app.resources"},
    "app.hub": {"app.estimator", "app.catalog"},
    "app.logs": {"app.estimator"},
    "app.measure": {"app.estimator", "app.catalog"},
    "app.cli": {"app.estimator", "app.catalog", "app.hub", "app.logs", "app.problems", "app.units"},
    "app.web": {"app.estimator", "app.catalog", "app.hub", "app.logs", "app.problems", "app.resources", "app.units",
                "app.measure"},  # app.measure: only app.web.trace_option, inside a function (checked below)
    "app.main": {"app.web", "app.catalog", "app.estimator", "app.hub", "app.resources"},
    "app.problems": {"app.estimator", "app.hub"},
    "app.resources": set(),
    "app.units": set(),
    "app": set(),
}


def _module_name(path: Path) -> str:
    parts = ["app", *path.relative_to(APP).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    """The package (or shared module) a module belongs to."""
    return next((p for p in PACKAGES if module == p or module.startswith(p + ".")), module)


def _is_module(name: str) -> bool:
    path = APP.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


class _Imports(ast.NodeVisitor):
    """Every app.* module imported, with whether the import sits inside a function."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[tuple[str, bool, int]] = []
        self.depth = 0

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [(a.name, self.depth > 0, node.lineno) for a in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            up = self.package.split(".")[:len(self.package.split(".")) - node.level + 1]
            base = ".".join([*up, *([base] if base else [])])
        for a in node.names:
            name = f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base
            self.found.append((name, self.depth > 0, node.lineno))


def _app_imports() -> list[tuple[str, str, bool, str]]:
    """(importing module, imported app module, inside a function, where) for every file under app/."""
    out = []
    for path in sorted(APP.rglob("*.py")):
        module = _module_name(path)
        visitor = _Imports(module, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(), str(path)))
        out += [(module, name, inner, f"{path.relative_to(APP.parent)}:{line}")
                for name, inner, line in visitor.found if name.split(".")[0] == "app"]
    return out


IMPORTS = _app_imports()


def test_every_module_belongs_to_a_documented_part():
    loose = {_part(_module_name(p)) for p in APP.rglob("*.py")} - set(PACKAGES)
    assert loose <= {"app", "app.main", *SHARED}, f"a new top-level module needs a package: {sorted(loose)}"
    text = (APP.parent / "ARCHITECTURE.md").read_text()
    assert all(f"`{p.replace('.', '/')}" in text for p in (*PACKAGES, *SHARED, "app.main")), "ARCHITECTURE.md"


@pytest.mark.parametrize("part", sorted(MAY_IMPORT))
def test_each_part_imports_only_what_architecture_md_allows(part: str):
    bad = [f"{where}: {name}" for module, name, _, where in IMPORTS
           if _part(module) == part and _part(name) not in {part, "app", *MAY_IMPORT[part]}]
    assert not bad, f"{part} may import only {sorted(MAY_IMPORT[part])} of app:\n" + "\n".join(bad)


def test_the_hub_has_one_door():
    bad = [f"{where}: {name}" for module, name, _, where in IMPORTS
           if _part(name) == "app.hub" and name != "app.hub" and _part(module) != "app.hub"]
    assert not bad, "outside app/hub/, import only from app.hub:\n" + "\n".join(bad)


def test_measure_is_reached_only_through_the_trace_option_inside_a_function():
    users = {(module, inner) for module, name, inner, _ in IMPORTS
             if _part(name) == "app.measure" and _part(module) != "app.measure"}
    assert users <= {("app.web.trace_option", True)}, users


def test_nothing_imports_the_entry_points():
    bad = [f"{where}: {name}" for module, name, _, where in IMPORTS
           if (name == "app.main" or _part(name) == "app.cli") and _part(module) != _part(name)]
    assert not bad, bad


WEB_FRAMEWORKS = {"fastapi", "starlette", "jinja2", "uvicorn", "markupsafe"}


@pytest.mark.parametrize("part", ["app.estimator", "app.catalog", "app.hub", "app.logs", "app.cli", "app.measure",
                                  *SHARED])
def test_only_the_web_imports_a_web_framework(part: str):
    bad = []
    for path in sorted(APP.rglob("*.py")):
        if _part(_module_name(path)) == part:
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
                bad += [f"{path.relative_to(APP.parent)}:{node.lineno}: {n}" for n in names
                        if n.split(".")[0] in WEB_FRAMEWORKS]
    assert not bad, bad
