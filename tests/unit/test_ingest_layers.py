"""Ingest's layers, read from the source: the use cases know no HTTP, and no module outside the one
mapping (``answers``) and the rendering (``http_render``, and ``web/errors`` for the pages) writes an
HTTP error status of its own."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INGEST = ROOT / "services" / "ingest"
MAPPING = {"answers.py", "http_render.py", "web/errors.py"}
#: Answers that are no refused request: the health check reports a database it cannot reach.
NOT_AN_ERROR = {("app.py", "healthz")}
GONE = {"UploadRefused", "PacketRefused"}


def modules():
    for path in sorted(INGEST.rglob("*.py")):
        yield path.relative_to(INGEST).as_posix(), ast.parse(path.read_text(), filename=str(path))


def error_status(node) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int and 400 <= node.value <= 599


def enclosing_functions(tree):
    """(function name, node) for every node, the name of the innermost function holding it."""
    def walk(node, name):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else name
            yield inner, child
            yield from walk(child, inner)
    yield from walk(tree, None)


def test_the_status_carrying_exceptions_are_gone():
    found = [(name, node.lineno) for name, tree in modules() for node in ast.walk(tree)
             if (isinstance(node, ast.Name) and node.id in GONE)
             or (isinstance(node, (ast.ClassDef, ast.alias)) and node.name in GONE)]
    assert found == []


def test_the_use_cases_import_no_http_and_name_no_status():
    for name, tree in modules():
        if not name.startswith("usecases/"):
            continue
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(m.split(".")[0] == "aiohttp" or ".http" in m or m.endswith("answers") for m in imported), name
        assert [n.lineno for n in ast.walk(tree) if error_status(n)] == [], name


def test_only_the_mapping_and_the_rendering_write_error_statuses():
    offences = []
    for name, tree in modules():
        if name in MAPPING:
            continue
        for function, node in enclosing_functions(tree):
            if (name, function) in NOT_AN_ERROR or not isinstance(node, ast.Call):
                continue
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if callee.startswith("HTTP") or any(error_status(a) for a in node.args) \
                    or any(k.arg == "status" and error_status(k.value) for k in node.keywords):
                offences.append(f"{name}:{node.lineno} {callee}")
    assert offences == []


def test_no_caught_error_is_asked_for_a_status():
    offences = []
    for name, tree in modules():
        for handler in ast.walk(tree):
            if not (isinstance(handler, ast.ExceptHandler) and handler.name):
                continue
            offences += [f"{name}:{n.lineno}" for n in ast.walk(handler)
                         if isinstance(n, ast.Attribute) and n.attr == "status"
                         and isinstance(n.value, ast.Name) and n.value.id == handler.name]
    assert offences == []


def test_errors_are_defined_in_one_place_and_carry_no_status():
    subclasses, with_status = [], []
    for name, tree in modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            if name != "errors.py" and any(getattr(b, "id", "") == "IngestError" for b in node.bases):
                subclasses.append(f"{name}:{node.name}")
            if any(getattr(b, "id", "").endswith(("Error", "Exception")) for b in node.bases):
                with_status += [f"{name}:{node.name}" for n in ast.walk(node)
                                if isinstance(n, ast.Attribute) and n.attr == "status"]
    assert subclasses == [] and with_status == []
