"""``cpcs refcat ...``: fill, list, query and empty the local reference-catalogue store.

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
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from .presets import PRESETS, RefcatError

DEFAULT_MONGO_URL = "mongodb://127.0.0.1:27017"
DEFAULT_DB = "cpcs"

app = typer.Typer(
    name="refcat", help="Local reference-catalogue store: import survey tables, fetch fields from archives, "
                        "list, query and delete surveys.",
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
    file: Annotated[Path, typer.Argument(help="CSV, ECSV, FITS / FITS_LDAC, VOTable or Parquet table, a folder "
                                               "of Parquet files, or a HATS catalogue folder.")],
    survey: Annotated[str, typer.Option("--survey", help="Survey name used in filter strings (e.g. APASS); "
                                                         "an alias (REFCAT2, GAIA, APASSDR9; see `cpcs refcat "
                                                         "surveys`) stores its canonical name, any other name "
                                                         "is a survey of its own. Chooses the preset unless "
                                                         "--preset/--columns.")],
    preset: Annotated[str | None, typer.Option("--preset", help="Column layout: one of "
                      + ", ".join(p.key for p in PRESETS) + ", or ucd (VOTable columns by their UCDs).")] = None,
    columns: Annotated[str | None, typer.Option("--columns", help="Explicit mapping, e.g. "
                       "ra=RAJ2000,dec=DEJ2000,V=Vmag,V_err=e_Vmag.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Catalogue version (default: the preset's).")] = None,
    description: Annotated[str | None, typer.Option("--description", help="Free text for the survey record.")] = None,
    synthetic: Annotated[bool | None, typer.Option("--synthetic/--real", help="Label the stars as simulated "
                         "(default: synthetic when the version contains 'synthetic').")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Delete the survey before importing (how a new "
                       "version replaces the stored one; without it another version is refused).")] = False,
    table_format: Annotated[str | None, typer.Option("--format", help="csv, tab, ecsv, fits, votable, "
                            "parquet or hats (default: from the file).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = False,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Journal the import so that running the "
                      "same command after an interruption continues where it stopped (default).")] = True,
    derive: Annotated[str | None, typer.Option("--derive", help="Bands to derive at query time through a "
                      "published transformation, e.g. B,V,R,I for SDSS (Lupton 2005).")] = None,
    buffer_stars: Annotated[int | None, typer.Option("--buffer-stars", help="Stars held in memory before "
                            "writing (default 250000, ~300 bytes each); a file in random sky order that fits "
                            "needs no merging afterwards.")] = None,
    mongo_url: MongoUrl = DEFAULT_MONGO_URL,
    db: DbName = DEFAULT_DB,
) -> None:
    """Import a survey table into the store."""
    from .importer import import_file

    started = time.perf_counter()

    async def action(store):
        rows = await import_file(store, file, survey=survey, preset=preset, columns=columns, version=version,
                                 description=description, synthetic=synthetic, replace=replace,
                                 format=table_format, progress=progress, resume=resume,
                                 derive=[b for b in (derive or "").split(",") if b.strip()],
                                 buffer_rows=buffer_stars)
        return rows, store.last_import or {}

    try:
        rows, done = _run(_with_store(mongo_url, db, action))
    except RefcatError as exc:
        raise _fail(str(exc)) from None
    elapsed = time.perf_counter() - started
    name = done.get("survey") or _survey_label(survey)
    version_text = f" {done['version']}" if done.get("version") else ""
    skipped = int(done.get("duplicates_skipped") or 0)
    typer.echo(f"imported {rows} stars from {file.name} into survey {name}{version_text} in {elapsed:.1f} s"
               + (f" ({skipped} stars the survey already held were skipped)" if skipped else ""))


def _survey_label(survey: str) -> str:
    from .surveys import canonical_name

    return canonical_name(survey)


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
    rows = [("survey", "version", "stars", "bands", "system", "sky", "pm", "origin", "synthetic", "imported (UTC)")]
    for s in surveys:
        imported = s.get("imported_at")
        derived = list((s.get("derived") or {}).keys())
        sky = s.get("sky_percent")
        rows.append((
            s["name"], str(s.get("version", "")), str(s.get("rows", 0)),
            " ".join(list(s.get("bands") or []) + [f"{b}*" for b in derived]),
            str(s.get("system", "")), "?" if sky is None else _percent(float(sky)),
            "yes" if s.get("proper_motions") else "no",
            "+".join(o.split(":")[0] for o in (s.get("origins") or [])) or "import",
            "yes" if s.get("synthetic") else "no",
            imported.strftime("%Y-%m-%d %H:%M") if hasattr(imported, "strftime") else str(imported or ""),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    if any(s.get("derived") for s in surveys):
        typer.echo("* derived at query time from other bands of the survey (see shared/refcat/derived.py)")


def _percent(value: float) -> str:
    """Sky coverage as people read it: 100%, 41.3%, 0.52%, 0.0031%."""
    if value >= 99.995:
        return "100%"
    if value >= 10:
        return f"{value:.1f}%"
    if value >= 0.01:
        return f"{value:.2f}%"
    return f"{value:.2g}%"


@app.command("cone")
def cone_command(
    ra: Annotated[float, typer.Argument(help="Right ascension of the centre (degrees).")],
    dec: Annotated[float, typer.Argument(help="Declination of the centre (degrees).")],
    radius: Annotated[float, typer.Argument(help="Radius (degrees).")],
    survey: Annotated[list[str] | None, typer.Option("--survey", help="Only this survey (repeatable).")] = None,
    epoch: Annotated[float | None, typer.Option("--epoch", help="Move positions to this Julian year with the "
                     "proper motions.")] = None,
    online: Annotated[str | None, typer.Option("--online", help="Fetch from the archives of these surveys "
                      "(comma-separated, or all) what the store lacks, and cache it.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds allowed to each archive.")] = 30.0,
    mongo_url: MongoUrl = DEFAULT_MONGO_URL,
    db: DbName = DEFAULT_DB,
) -> None:
    """Count the reference stars of a field, survey by survey, and say how well each covers it.

    For a negative declination put the options first and -- before the numbers:
    cpcs refcat cone --survey APASS -- 210.5 -12.3 0.25
    """
    from .providers import OnlineSettings, ReferenceSource

    async def action(store):
        names = frozenset(n.strip() for n in (online or "").split(",") if n.strip())
        base = OnlineSettings.from_env()
        settings = OnlineSettings(enabled=names, timeout_s=timeout, retries=base.retries, backoff_s=base.backoff_s,
                                  vizier_server=base.vizier_server, gaia_server=base.gaia_server,
                                  sdss_server=base.sdss_server)
        return await ReferenceSource(store, settings).cone(ra, dec, radius, surveys=survey, epoch_jyear=epoch)

    try:
        result = _run(_with_store(mongo_url, db, action))
    except (RefcatError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if not result.coverage:
        typer.echo("no surveys in the store")
        return
    for name, c in result.coverage.items():
        stars = next((s for s in result.stars if s.survey == name), None)
        bands = " ".join(sorted(stars.mags)) if stars is not None else ""
        line = f"{name:10s} {c.status:11s} {c.fraction:6.1%} {c.n_stars:7d} stars  {bands}"
        typer.echo(line.rstrip() + (f"  ({c.message})" if c.message else ""))


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


@app.command("surveys")
def surveys_command() -> None:
    """List the survey names the project knows, with their aliases."""
    from .surveys import describe

    for name, title, version, aliases in describe():
        typer.echo(f"{name:10s} {version:17s} {title}")
        if aliases:
            typer.echo(f"{'':10s} aliases: {', '.join(aliases)}")


@app.command("presets")
def presets_command() -> None:
    """List the column layouts the importer knows."""
    for p in PRESETS:
        bands = " ".join(f"{b.band}({b.system})" for b in p.bands)
        typer.echo(f"{p.key:18s} survey={p.survey:8s} version={p.version:9s} {p.source:16s} {bands}")


__all__ = ["app"]
