"""The reference-catalogue package is split by responsibility, and its modules talk through public names.

Storage (``blocks``, ``records``, ``store``), query (``query``), import (``import_session``, ``dedupe``,
``importer``) and online fill (``archives``, ``providers``): what one module needs from another is a
public, documented function or class of the module that owns it. Checked on the source (AST): no
``from .x import _private``, no ``something._private`` except on ``self``/``cls``/``super()``, and no
private refcat name imported from anywhere else in the repository.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "shared" / "refcat"
PACKAGE_NAME = "shared.refcat"
OWN_OBJECTS = {"self", "cls"}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_of(node: ast.ImportFrom, path: Path) -> str | None:
    """The dotted module an ``from ... import`` reads, when it is inside shared.refcat, else None."""
    if node.level:
        base = list(path.relative_to(ROOT).with_suffix("").parts[:-node.level])
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return target if target == PACKAGE_NAME or target.startswith(PACKAGE_NAME + ".") else None


def private_uses(source: str, path: Path, *, attributes: bool = True) -> list[str]:
    """Every private refcat name that ``source`` (a file at ``path``) imports and, with ``attributes``,
    every private attribute it reads on another object, as ``line: text``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and _module_of(node, path):
            module = _module_of(node, path)
            parts = module.split(".")
            if any(_is_private(p) for p in parts):
                found.append(f"{node.lineno}: from {module} import ... (a private module)")
            found += [f"{node.lineno}: from {module} import {a.name}" for a in node.names if _is_private(a.name)]
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names
                      if a.name.startswith(PACKAGE_NAME) and any(_is_private(p) for p in a.name.split("."))]
        elif attributes and isinstance(node, ast.Attribute) and _is_private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in OWN_OBJECTS:
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                continue
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def refcat_files() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def test_the_check_finds_private_uses():
    path = PACKAGE / "providers.py"
    sample = ("from .store import RefcatStore, _helper\n"
              "from shared.refcat.query import _assemble\n"
              "from . import _hidden\n"
              "def f(store):\n"
              "    self = store\n"
              "    self._ok()\n"
              "    return store._block_documents(), super()._fine()\n")
    found = private_uses(sample, path)
    assert [line.split(":")[0] for line in found] == ["1", "2", "3", "7"], found
    assert private_uses("from .store import RefcatStore\nx = RefcatStore.cone\n", path) == []
    assert private_uses("from ..footprint import _inside\n", path) == []  # not a refcat module


def test_refcat_modules_use_only_public_names_of_each_other():
    files = refcat_files()
    modules = {p.stem for p in files}
    assert {"blocks", "records", "store", "query", "import_session", "importer", "archives", "providers"} <= modules
    offenders = {str(p.relative_to(ROOT)): private_uses(p.read_text(), p) for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_package_is_wired_through_cross_imports():
    """The modules do import each other (so the check above has something to check)."""
    cross = 0
    for path in refcat_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and _module_of(node, path):
                cross += 1
    assert cross >= 20


def test_nothing_outside_imports_private_refcat_names():
    paths = [p for part in ("services", "shared", "bench", "tests") for p in (ROOT / part).rglob("*.py")
             if PACKAGE not in p.parents]
    offenders = {}
    for path in paths:
        found = private_uses(path.read_text(), path, attributes=False)
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}

