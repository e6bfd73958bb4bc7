"""Science stays pure and only the messaging module speaks AMQP."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IO_MODULES = {"asyncio", "aio_pika", "aiormq", "pymongo", "gridfs", "bson", "motor", "aiohttp"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def python_files(*parts: str) -> list[Path]:
    return sorted((ROOT.joinpath(*parts)).rglob("*.py"))


def test_science_and_readers_import_no_io():
    pure = [*ROOT.glob("services/*/science/*.py"), *python_files("shared", "catalogue"),
            *python_files("shared", "fitsimage"), ROOT / "shared" / "simimage.py",
            ROOT / "shared" / "simfield.py", ROOT / "shared" / "calibration_params_model.py",
            *(ROOT / "shared" / "refcat" / f"{name}.py" for name in (
                "presets", "surveys", "model", "records", "dedupe", "astrometry", "derived", "healpix", "coverage"))]
    assert pure
    offenders = {str(p.relative_to(ROOT)): sorted(imported_roots(p) & IO_MODULES) for p in pure}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_the_messaging_module_imports_aio_pika():
    users = [str(p.relative_to(ROOT)) for p in [*python_files("shared"), *python_files("services")]
             if imported_roots(p) & {"aio_pika", "aiormq"}]
    assert users == ["shared/messaging.py"]
