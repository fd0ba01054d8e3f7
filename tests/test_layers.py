"""The import graph DESIGN.md fixes, read from the source with ``ast``: ``encoders`` and
``index`` never import each other, neither imports ``app``, and the services
(``app.services``) never import the HTTP layer (``app.api``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# (package folder, the packages no module under it may import)
RULES = [
    ("encoders", ("index", "app")),
    ("index", ("encoders", "app")),
    ("app/services", ("app.api",)),
]
_IMPORT_CALLS = {"import_module", "__import__"}


def imported_modules(source: str, module: str) -> set[str]:
    """Every module that ``source`` (the text of ``module``, dotted) imports: ``import``
    and ``from`` statements anywhere (relative ones resolved), ``from a import b`` as both
    ``a`` and ``a.b``, and ``importlib.import_module("x")`` / ``__import__("x")`` calls with
    a literal name."""
    package = module.split(".")
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            arg = node.args[0]
            if name in _IMPORT_CALLS and isinstance(arg, ast.Constant):
                found.add(str(arg.value))
    return found


def _violations(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules for f in forbidden if m == f or m.startswith(f + "."))


def _module_name(path: Path) -> str:
    """Dotted, ``pkg.__init__`` for a package (so a relative import resolves in ``pkg``)."""
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


@pytest.mark.parametrize(("folder", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_no_import_across_the_layers(folder: str, forbidden: tuple[str, ...]) -> None:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"no Python files under {folder}"
    bad = {}
    for path in files:
        modules = imported_modules(path.read_text(encoding="utf-8"), _module_name(path))
        if hits := _violations(modules, forbidden):
            bad[str(path.relative_to(ROOT))] = hits
    assert not bad, f"{folder} must not import {forbidden}: {bad}"


def test_the_scan_sees_every_kind_of_import() -> None:
    source = """
import numpy
import index.exact as ex
from index import exact_search
from app import api
def later():
    from ..api import schemas
    importlib.import_module("encoders.bm25")
    __import__("app")
"""
    modules = imported_modules(source, "app.services.search")
    assert {"index.exact", "index", "app.api", "app.api.schemas", "encoders.bm25"} <= modules
    assert _violations(modules, ("index",)) == ["index", "index.exact", "index.exact_search"]
    assert _violations(modules, ("app.api",)) == ["app.api", "app.api.schemas"]
    assert _violations({"indexing", "app.apis", "app"}, ("index", "app.api")) == []
