"""Services talk only through the exchange: no service imports another, each touches only its own data.

The ownership table is ``shared.ownership``. Collections are found in the source (``db.<name>``,
``db["<name>"]``, ``get_collection("<name>")``, GridFS buckets by ``bucket_name=`` or
``shared.imaging.buckets``); a write to a bucket is a call of a GridFS write method on a name that
holds the bucket.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from shared.ownership import (
    BLOB_READERS,
    OWNERS,
    REFCAT_COLLECTIONS,
    REFCAT_USERS,
    owner_of_bucket,
    owner_of_collection,
)

ROOT = Path(__file__).resolve().parents[2]
#: The composition and command-line layer: it builds and runs the services, so it may import them.
COMPOSITION = {"cli.py", "launcher.py", "local.py", "runfile.py", "demo.py", "client.py", "watch.py", "__init__.py"}
DB_METHODS = {"command", "client", "name", "get_collection", "list_collection_names", "drop_collection",
              "create_collection", "aggregate", "watch", "with_options", "codec_options", "read_preference",
              "write_concern", "read_concern", "dereference", "cursor_command", "validate_collection"}
BUCKET_WRITES = {"upload_from_stream", "upload_from_stream_with_id", "open_upload_stream",
                 "open_upload_stream_with_id", "delete", "delete_by_name", "rename", "rename_by_name", "drop"}
COLLECTION_WRITES = {"insert_one", "insert_many", "replace_one", "update_one", "update_many", "delete_one",
                     "delete_many", "find_one_and_update", "find_one_and_replace", "find_one_and_delete",
                     "bulk_write", "drop"}


@dataclass
class Access:
    collections: set[str] = field(default_factory=set)
    buckets: set[str] = field(default_factory=set)
    bucket_writes: set[str] = field(default_factory=set)
    imports: set[str] = field(default_factory=set)


def _terminal(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _constant(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def analyse(source: str) -> Access:
    """What one module imports and which collections and buckets it touches."""
    tree = ast.parse(source)
    found = Access()
    holders: dict[str, str] = {}  # a name or attribute holding a bucket -> the bucket
    known_buckets = {b for owned in OWNERS.values() for b in owned.buckets}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.imports |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.imports.add(node.module)
            found.imports |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Attribute) and _terminal(node.value) in ("db", "database"):
            if node.attr not in DB_METHODS:
                found.collections.add(node.attr)
        elif isinstance(node, ast.Subscript) and _terminal(node.value) in ("db", "database"):
            name = _constant(node.slice)
            if name:
                found.collections.add(name)
        elif isinstance(node, ast.Call):
            callee = _terminal(node.func)
            if callee == "get_collection" and node.args and _constant(node.args[0]):
                found.collections.add(_constant(node.args[0]))
            elif callee == "next_sequence":
                found.collections.add("counters")
            elif callee == "RefcatStore":
                found.collections |= REFCAT_COLLECTIONS
            elif callee == "AsyncGridFSBucket":
                name = next((_constant(k.value) for k in node.keywords if k.arg == "bucket_name"), None) or "fs"
                found.buckets.add(name)
            elif callee == "buckets":
                found.buckets |= {_constant(a) for a in node.args[1:] if _constant(a)}
            elif isinstance(node.func, ast.Attribute) and node.func.attr in BUCKET_WRITES:
                holder = _terminal(node.func.value)
                bucket = holders.get(holder) or (holder if holder in known_buckets else None)
                if bucket:
                    found.bucket_writes.add(bucket)
        if isinstance(node, ast.Assign | ast.AnnAssign):
            _note_holders(node, holders)
    for name in list(found.collections):
        if name.endswith((".files", ".chunks")):
            found.collections.discard(name)
            found.buckets.add(name.rsplit(".", 1)[0])
    # writes through collection names: db["scratch.files"].delete_many(...)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in COLLECTION_WRITES and isinstance(node.func.value, ast.Subscript)):
            name = _constant(node.func.value.slice) or ""
            if name.endswith((".files", ".chunks")):
                found.bucket_writes.add(name.rsplit(".", 1)[0])
    return found


def _note_holders(node: ast.Assign | ast.AnnAssign, holders: dict[str, str]) -> None:
    value = node.value
    if not isinstance(value, ast.Call):
        return
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    callee = _terminal(value.func)
    if callee == "AsyncGridFSBucket":
        bucket = next((_constant(k.value) for k in value.keywords if k.arg == "bucket_name"), None) or "fs"
        for target in targets:
            if _terminal(target):
                holders[_terminal(target)] = bucket
    elif callee == "buckets":
        names = [_constant(a) for a in value.args[1:]]
        for target in targets:
            if isinstance(target, ast.Tuple):
                # a starred argument (buckets(db, *names)) makes the lists differ: what pairs up is noted
                for element, bucket in zip(target.elts, names, strict=False):
                    if _terminal(element) and bucket:
                        holders[_terminal(element)] = bucket


def service_modules() -> dict[str, list[Path]]:
    services = {}
    for directory in sorted((ROOT / "services").iterdir()):
        if directory.is_dir() and (directory / "__init__.py").exists():
            services[directory.name] = sorted(directory.rglob("*.py"))
    return services


def cross_imports(service: str, access: Access) -> set[str]:
    return {m for m in access.imports
            if m.startswith("services.") and len(m.split(".")) > 1
            and m.split(".")[1] != service and m.split(".")[1] in OWNERS}


def foreign_data(service: str, access: Access) -> list[str]:
    """Every collection or bucket this service's module touches that the table does not give it."""
    problems = []
    for name in sorted(access.collections):
        owner = owner_of_collection(name)
        if name in REFCAT_COLLECTIONS:
            if service not in REFCAT_USERS:
                problems.append(f"uses the reference store's {name}")
        elif owner is None:
            problems.append(f"touches {name}, which is in no service's table (add it to shared/ownership.py)")
        elif owner != service:
            problems.append(f"touches {owner}'s collection {name}")
    for bucket in sorted(access.buckets):
        owner = owner_of_bucket(bucket)
        if owner is None:
            problems.append(f"uses GridFS bucket {bucket}, which is in no service's table")
        elif owner != service and bucket not in BLOB_READERS.get(service, ()):
            problems.append(f"reads {owner}'s GridFS bucket {bucket} without a claim-check entry")
    for bucket in sorted(access.bucket_writes):
        owner = owner_of_bucket(bucket)
        if owner != service:
            problems.append(f"writes or deletes in {owner}'s GridFS bucket {bucket} (only the owner may)")
    return problems


def test_every_service_package_is_in_the_ownership_table():
    assert set(service_modules()) == set(OWNERS)


def test_no_service_imports_another_service():
    offenders = {}
    for service, paths in service_modules().items():
        for path in paths:
            imported = cross_imports(service, analyse(path.read_text()))
            if imported:
                offenders[str(path.relative_to(ROOT))] = sorted(imported)
    assert offenders == {}


def test_composition_layer_is_the_only_place_importing_several_services():
    layer = {p.name for p in (ROOT / "services").glob("*.py")}
    assert layer <= COMPOSITION, f"new top-level modules under services/: {sorted(layer - COMPOSITION)}"


def test_each_service_touches_only_its_own_collections_and_buckets():
    offenders = {}
    for service, paths in service_modules().items():
        for path in paths:
            problems = foreign_data(service, analyse(path.read_text()))
            if problems:
                offenders[str(path.relative_to(ROOT))] = problems
    assert offenders == {}


def test_the_checks_catch_what_they_are_meant_to():
    """The analysis itself, on small sources: a cross import, a foreign collection, a foreign delete."""
    access = analyse("from services.calibration.work import params_with\nimport services.ingest.store\n")
    assert cross_imports("ingest", access) == {"services.calibration.work", "services.calibration.work.params_with"}
    source = ("class S:\n"
              "    def __init__(self, db):\n"
              "        self.db = db\n"
              "        self.scratch = AsyncGridFSBucket(db, bucket_name='scratch')\n"
              "    async def f(self):\n"
              "        await self.db.events.find_one({})\n"
              "        await self.db['event_aliases'].find_one({})\n"
              "        await self.scratch.delete(1)\n")
    access = analyse(source)
    assert access.collections == {"events", "event_aliases"} and access.bucket_writes == {"scratch"}
    assert foreign_data("lightcurve", access) == [
        "touches ingest's collection event_aliases", "touches ingest's collection events",
        "reads ingest's GridFS bucket scratch without a claim-check entry",
        "writes or deletes in ingest's GridFS bucket scratch (only the owner may)"]
    reader = analyse("uploads, scratch = buckets(db, 'uploads', 'scratch')\n"
                     "async def f(deps):\n    return await deps.scratch.open_download_stream(1)\n")
    assert foreign_data("calibration", reader) == [] and reader.buckets == {"uploads", "scratch"}
    assert foreign_data("calibration", analyse("db['plots.files'].find_one({})")) == []
    assert foreign_data("lightcurve", analyse("db['plots.files'].delete_many({})")) == [
        "writes or deletes in calibration's GridFS bucket plots (only the owner may)"]
