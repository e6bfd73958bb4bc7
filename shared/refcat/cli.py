"""``cpcs refcat ...``: fill, list and empty the local reference-catalogue store.

The main CLI mounts :data:`app` (``main_app.add_typer(app, name="refcat")``). The database comes from
``--mongo-url`` / ``--db`` or the environment (``CPCS_MONGO_URL``, default ``mongodb://127.0.0.1:27017``;
``CPCS_MONGO_DB``, default ``cpcs``). Operator mistakes print one sentence on stderr and exit with
status 2.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from pathlib import Path
from typing import Annotated, Any, Coroutine, Optional

import typer

from .presets import PRESETS, RefcatError

DEFAULT_MONGO_URL = "mongodb://127.0.0.1:27017"
DEFAULT_DB = "cpcs"

app = typer.Typer(
    name="refcat", help="Local reference-catalogue store: import survey tables, list and delete surveys.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)

MongoUrl = Annotated[str, typer.Option("--mongo-url", envvar="CPCS_MONGO_URL", help="MongoDB URL.")]
DbName = Annotated[str, typer.Option("--db", envvar="CPCS_MONGO_DB", help="Database name.")]


def _run(coro: Coroutine) -> Any:
    """Run a coroutine to completion, also when called from code that already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _fail(message: str) -> typer.Exit:
    message = message.strip()
    if message and message[-1] not in ".!?":
        message += "."
    typer.echo(f"error: {message[0].upper() + message[1:] if message else 'failed'}", err=True)
    return typer.Exit(code=2)


async def _with_store(mongo_url: str, db_name: str, action):
    from pymongo import AsyncMongoClient
    from pymongo.errors import ConfigurationError, PyMongoError, ServerSelectionTimeoutError

    from .store import RefcatStore

    options = {} if "serverselectiontimeoutms" in mongo_url.lower() else {"serverSelectionTimeoutMS": 5000}
    try:
        client = AsyncMongoClient(mongo_url, **options)
    except (ConfigurationError, ValueError) as exc:
        raise RefcatError(f"invalid MongoDB URL {mongo_url!r} ({exc})") from None
    try:
        return await action(RefcatStore(client[db_name]))
    except ServerSelectionTimeoutError:
        raise RefcatError(f"no MongoDB server answers at {mongo_url}") from None
    except PyMongoError as exc:
        raise RefcatError(f"the database refused the operation ({str(exc).splitlines()[0][:200]})") from None
    finally:
        await client.close()


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV, ECSV, FITS / FITS_LDAC, VOTable or Parquet table.")],
    survey: Annotated[str, typer.Option("--survey", help="Survey name used in filter strings (e.g. APASS); "
                                                         "chooses the preset unless --preset/--columns.")],
    preset: Annotated[Optional[str], typer.Option("--preset", help="Column layout: one of "
                      + ", ".join(p.key for p in PRESETS) + ".")] = None,
    columns: Annotated[Optional[str], typer.Option("--columns", help="Explicit mapping, e.g. "
                       "ra=RAJ2000,dec=DEJ2000,V=Vmag,V_err=e_Vmag.")] = None,
    version: Annotated[Optional[str], typer.Option("--version", help="Catalogue version (default: the preset's).")] = None,
    description: Annotated[Optional[str], typer.Option("--description", help="Free text for the survey record.")] = None,
    synthetic: Annotated[Optional[bool], typer.Option("--synthetic/--real", help="Label the stars as simulated "
                         "(default: synthetic when the version contains 'synthetic').")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Delete the survey before importing.")] = False,
    table_format: Annotated[Optional[str], typer.Option("--format", help="csv, tab, ecsv, fits, votable or "
                            "parquet (default: from the file).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = False,
    mongo_url: MongoUrl = DEFAULT_MONGO_URL,
    db: DbName = DEFAULT_DB,
) -> None:
    """Import a survey table into the store."""
    from .importer import import_file

    started = time.perf_counter()

    async def action(store):
        return await import_file(store, file, survey=survey, preset=preset, columns=columns, version=version,
                                 description=description, synthetic=synthetic, replace=replace,
                                 format=table_format, progress=progress)

    try:
        rows = _run(_with_store(mongo_url, db, action))
    except RefcatError as exc:
        raise _fail(str(exc)) from None
    elapsed = time.perf_counter() - started
    typer.echo(f"imported {rows} stars from {file.name} into survey {_survey_label(survey)} "
               f"in {elapsed:.1f} s")


def _survey_label(survey: str) -> str:
    from .store import canonical_survey

    return canonical_survey(survey)


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the survey records as JSON.")] = False,
    mongo_url: MongoUrl = DEFAULT_MONGO_URL,
    db: DbName = DEFAULT_DB,
) -> None:
    """List the surveys in the store."""
    async def action(store):
        return await store.list_surveys()

    try:
        surveys = _run(_with_store(mongo_url, db, action))
    except RefcatError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(surveys, default=str, indent=2))
        return
    if not surveys:
        typer.echo("no surveys in the store")
        return
    rows = [("survey", "version", "stars", "bands", "system", "synthetic", "imported (UTC)")]
    for s in surveys:
        imported = s.get("imported_at")
        rows.append((
            s["name"], str(s.get("version", "")), str(s.get("rows", 0)), " ".join(s.get("bands") or []),
            str(s.get("system", "")), "yes" if s.get("synthetic") else "no",
            imported.strftime("%Y-%m-%d %H:%M") if hasattr(imported, "strftime") else str(imported or ""),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


@app.command("delete")
def delete_command(
    name: Annotated[str, typer.Argument(help="Survey name (any case).")],
    mongo_url: MongoUrl = DEFAULT_MONGO_URL,
    db: DbName = DEFAULT_DB,
) -> None:
    """Delete a survey and all its stars."""
    async def action(store):
        record = await store.get_survey(name)
        removed = await store.delete_survey(name)
        return record["name"] if record else name, removed

    try:
        real_name, removed = _run(_with_store(mongo_url, db, action))
    except RefcatError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"deleted survey {real_name} ({removed} stars)")


@app.command("presets")
def presets_command() -> None:
    """List the column layouts the importer knows."""
    for p in PRESETS:
        bands = " ".join(f"{b.band}({b.system})" for b in p.bands)
        typer.echo(f"{p.key:18s} survey={p.survey:8s} version={p.version:9s} {p.source:16s} {bands}")


__all__ = ["app"]
