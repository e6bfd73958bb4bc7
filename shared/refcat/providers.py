"""Online fill: reference stars from the local store first, from the online archives (through astroquery) when the
store does not cover a field and an operator enabled the archive for that survey.

:class:`ReferenceSource` is what the calibration service asks::

    source = ReferenceSource(store, OnlineSettings.from_env())
    result = await source.cone(ra_deg, dec_deg, radius_deg, epoch_jyear=2026.4)
    result.stars      # list[ReferenceStars], as RefcatStore.cone returns
    result.coverage   # survey -> SurveyCoverage: covered / partial / outside / fetched / unreachable

For every survey whose archive is enabled, the field is compared with the survey's coverage in the
store (:mod:`shared.refcat.coverage`). Covered: answered from the store. Outside the archive's
footprint (Pan-STARRS south of -30, SkyMapper north of +2): skipped at once, no query. Otherwise the
missing sky tiles (HEALPix order 8, the store's pixels) are fetched in one cone query that circumscribes
them, in a worker thread, with a per-attempt timeout, retries with exponential backoff, and a hard
overall deadline (``timeout_s``) that holds even when the HTTP client itself would wait forever; the
stars are cached in the store by tile (the tiles join the survey's coverage, so the next request is
local) and the answer comes from the store. An archive that fails gives the outcome
``unreachable`` with a sentence ("no reference coverage from APASS: archive unreachable (...)"), never
a hang, and the other surveys still answer. Archive results are cached by :func:`cache_tiles`.

The archives, their astroquery code paths and the operator's settings (``CPCS_REFCAT_ONLINE``: online
access is off unless enabled per survey) are :mod:`shared.refcat.archives`.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from typing import Any

import numpy as np
from pymongo.errors import DuplicateKeyError

from . import coverage as cov
from .archives import ARCHIVES, ArchiveError, ArchiveSpec, OnlineSettings, call_with_deadline, query_archive
from .blocks import block_documents
from .healpix import grid, pixels_of, separation_deg
from .presets import RefcatError, StarColumns, get_preset
from .query import Cone, QueryResult, SurveyCoverage, assemble, cone_region
from .records import SurveyInfo, new_record, utcnow
from .store import RefcatStore
from .surveys import canonical_name

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------- cache


async def cache_tiles(store: RefcatStore, info: SurveyInfo, stars: StarColumns, tiles: Sequence[int], *, origin: str,
                      expected_rev: int | None = None) -> tuple[int, bool]:
    """Cache stars fetched from an archive for the sky ``tiles`` (nested pixels at ORDER): the
    stars in those tiles not already covered are stored, and the tiles join the coverage.

    Optimistic concurrency: when ``expected_rev`` is given and the survey's ``coverage_rev`` has
    changed meanwhile (another process cached something), nothing is kept and ``(0, False)`` is
    returned, so the caller can look again. Returns (stars stored, True) otherwise.
    """
    await store.ensure_indexes()
    existing = await store.get_survey(info.name, with_coverage=True)
    if existing is not None and existing.get("status", "ready") != "ready":
        raise RefcatError(f"survey {existing['name']} is being imported; the archive result is not cached")
    if existing is not None and existing.get("version") != info.version:
        raise RefcatError(f"survey {existing['name']} holds version {existing.get('version')!r}, the archive "
                          f"serves {info.version!r}: the archive result is not cached")
    rev = int((existing or {}).get("coverage_rev", 0))
    if expected_rev is not None and rev != expected_rev:
        return 0, False
    old = cov.from_text((existing or {}).get("moc") or "")
    tiles_arr = np.unique(np.asarray(list(tiles), dtype=np.int64))
    if not old.empty():
        tiles_arr = np.setdiff1d(tiles_arr, cov.pixels(old))
    hp = pixels_of(np.mod(stars.ra, 360.0), stars.dec) if len(stars) else np.zeros(0, np.int64)
    keep = np.isin(hp, tiles_arr)
    chunk = stars.take(keep) if not keep.all() else stars
    import_id = uuid.uuid4().hex
    store.invalidate_records()
    docs, rows, _ = await asyncio.to_thread(block_documents, info.name, import_id, 0, chunk,
                                           block_rows=store.block_rows, encoding=store.encoding)
    now = utcnow()
    record = dict(existing) if existing else new_record(info.name, info, now)
    if existing is None:
        record["status"] = "ready"
    if docs:
        await store.blocks.insert_many(docs, ordered=False)
    moc = old.union(cov.from_pixels(tiles_arr)) if tiles_arr.size else old
    bands = list(record.get("bands") or [])
    for band in chunk.mags:
        if band not in bands:
            bands.append(band)
    origins = list(record.get("origins") or [])
    if origin not in origins:
        origins.append(origin)
    derived = dict(record.get("derived") or {})
    derived.update({b: t for b, t in info.derived.items() if b not in bands})
    record.update({
        "derived": derived,
        "rows": int(record.get("rows", 0)) + rows, "blocks": int(record.get("blocks", 0)) + len(docs),
        "bands": bands, "moc": cov.to_text(moc), "sky_percent": cov.sky_percent(moc), "coverage_rev": rev + 1,
        "origins": origins, "fetches": int(record.get("fetches", 0)) + 1, "fetched_at": now,
        "proper_motions": bool(record.get("proper_motions")) or chunk.pmra is not None,
    })
    if existing is None:
        try:
            await store.surveys.insert_one(record)
        except DuplicateKeyError:  # another process created the survey meanwhile
            await store.blocks.delete_many({"import_id": import_id})
            return 0, False
        return rows, True
    result = await store.surveys.replace_one({"name": record["name"], "coverage_rev": rev},
                                            {k: v for k, v in record.items() if k != "_id"})
    if result.matched_count == 0:
        await store.blocks.delete_many({"import_id": import_id})
        return 0, False
    return rows, True


# -------------------------------------------------------------------------------------------- source


@dataclass
class FetchOutcome:
    status: str  # "fetched", "truncated", "unreachable"
    message: str = ""
    rows: int = 0
    stars: StarColumns | None = None  # kept for a truncated answer (not cached)


class ReferenceSource:
    """The store plus, for the surveys an operator enabled, the online archives (see the module doc).

    ``archives`` replaces the table of :data:`ARCHIVES` (another mirror's tables, other limits);
    ``query`` replaces :func:`query_archive` (same signature) for another archive client.
    """

    def __init__(self, store: RefcatStore, settings: OnlineSettings | None = None, *,
                 archives: Mapping[str, ArchiveSpec] | None = None, query: Callable = query_archive,
                 sleep: Callable[[float], Any] = asyncio.sleep):
        self.store = store
        self.settings = settings or OnlineSettings.from_env({})  # none given: offline
        self.archives = dict(ARCHIVES if archives is None else archives)
        self._query = query
        self._sleep = sleep
        self._locks: dict[str, asyncio.Lock] = {}

    def online_surveys(self) -> list[str]:
        return [name for name in self.archives if self.settings.is_enabled(name)]

    async def cone(self, ra_deg: float, dec_deg: float, radius_deg: float, *, surveys: Sequence[str] | None = None,
                   bands: Sequence[str] | None = None,
                   mag_limits: Mapping[str, tuple[float | None, float | None]] | None = None,
                   epoch_jyear: float | None = None) -> QueryResult:
        """Stars of every survey (or of ``surveys``) within the cone, and per survey what happened."""
        region = cone_region(ra_deg, dec_deg, radius_deg)
        online = {n.lower(): n for n in self.online_surveys()}
        wanted_online = list(dict.fromkeys(online[canonical_name(s).lower()] for s in (surveys or online.values())
                                           if canonical_name(s).lower() in online))
        outcomes: dict[str, SurveyCoverage] = {}
        extra: list = []
        if wanted_online:
            results = await asyncio.gather(*(self._ensure(name, region) for name in wanted_online))
            for name, (coverage, stars) in zip(wanted_online, results, strict=True):
                if coverage is not None:
                    outcomes[name] = coverage
                if stars is not None:
                    extra.append((name, stars))
        names = list(surveys) if surveys is not None else None
        if names is not None:
            result = await self.store.query(region, surveys=names, bands=bands, mag_limits=mag_limits,
                                            epoch_jyear=epoch_jyear)
        else:
            result = await self.store.query(region, bands=bands, mag_limits=mag_limits, epoch_jyear=epoch_jyear)
        stars = list(result.stars)
        coverage = dict(result.coverage)
        for name, columns in extra:  # truncated archive answers: used for this field, not cached
            record = self._transient_record(name)
            docs, _, _ = block_documents(name, "transient", 0, columns, block_rows=self.store.block_rows,
                                         encoding=self.store.encoding)
            got = assemble(record, docs, region, bands=bands, mag_limits=mag_limits, epoch_jyear=epoch_jyear)
            stars = [s for s in stars if s.survey != name] + ([got] if len(got) else [])
        for name, outcome in outcomes.items():
            local = coverage.get(name)
            n = next((len(s) for s in stars if s.survey == name), 0)
            if outcome.status in ("unreachable", "outside") and local is not None and local.status != "outside":
                # the archive failed but the store covers part of the field: say both
                outcome = dc_replace(outcome, fraction=local.fraction, version=local.version)
            coverage[name] = dc_replace(outcome, n_stars=n, version=outcome.version or (local.version if local else ""))
        return QueryResult(stars, coverage)

    def _transient_record(self, name: str) -> dict:
        spec = self.archives[name]
        preset = get_preset(spec.preset)
        return {"name": name, "version": preset.version, "bands": preset.band_names, "epoch": preset.epoch,
                "derived": {}}

    async def _ensure(self, name: str, region: Cone) -> tuple[SurveyCoverage | None, StarColumns | None]:
        """Make the store cover ``region`` for survey ``name`` if it can; the outcome when it is not
        simply "covered by the store" (None then), and the stars of a truncated answer."""
        spec = self.archives[name]
        footprint = cov.dec_band(*spec.dec_range)
        field = cov.cone(region.ra_deg, region.dec_deg, region.radius_deg)
        in_footprint = cov.fraction(field, footprint)
        version = get_preset(spec.preset).version
        if in_footprint <= 0.0:
            return SurveyCoverage(name, "outside", 0.0, version=version, source="archive",
                                  message=f"no reference coverage from {name}: the field at {region.describe()} is "
                                          f"outside the survey's footprint (Dec {spec.dec_range[0]:+.0f} to "
                                          f"{spec.dec_range[1]:+.0f})"), None
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            for _attempt in range(3):  # optimistic concurrency with other processes caching the same survey
                record = await self.store.get_survey(name, with_coverage=True)
                if record is not None and record.get("status", "ready") != "ready":
                    return None, None  # an import is running: answer from what is there
                have = cov.from_text((record or {}).get("moc") or "")
                missing = field.intersection(footprint)
                if not have.empty():
                    missing = missing.difference(have)
                if missing.empty():
                    return None, None
                tiles = cov.pixels(missing)
                outcome = await self._fetch(spec, region, tiles)
                if outcome.status != "fetched":
                    return self._coverage(name, version, in_footprint, outcome), outcome.stars
                info = _info(spec)
                stored, ok = await cache_tiles(self.store, info, outcome.stars, tiles.tolist(), origin=spec.origin,
                                              expected_rev=int((record or {}).get("coverage_rev", 0)))
                if ok:
                    log.info("refcat: cached %d %s stars for %d tiles around %s", stored, name, tiles.size,
                             region.describe())
                    return self._coverage(name, version, in_footprint, outcome), None
            return None, None

    def _coverage(self, name: str, version: str, in_footprint: float, outcome: FetchOutcome) -> SurveyCoverage:
        status = outcome.status if outcome.status != "truncated" else "partial"
        return SurveyCoverage(name, status, in_footprint if status != "unreachable" else 0.0, version=version,
                              message=outcome.message, source="archive")

    async def _fetch(self, spec: ArchiveSpec, region: Cone, tiles: np.ndarray) -> FetchOutcome:
        """Ask the archive for a cone circumscribing ``tiles``, with retries, inside the deadline."""
        ra_q, dec_q, radius_q = _circumscribe(region, tiles)
        settings = self.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.timeout_s
        reason = ""
        attempt = 0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0.05:
                break
            try:
                table = await call_with_deadline(
                    functools.partial(self._query, spec, settings, ra_q, dec_q, radius_q, max(0.1, remaining)),
                    remaining, name=f"refcat-{spec.survey}")
            except TimeoutError:
                reason = f"no answer within {settings.timeout_s:g} s"
                break
            except ArchiveError as exc:
                reason = exc.reason
                if not exc.retry or attempt >= settings.retries:
                    break
                attempt += 1
                pause = settings.backoff_s * 2 ** (attempt - 1)
                if loop.time() + pause >= deadline:
                    reason += f"; no time left for retry {attempt} within {settings.timeout_s:g} s"
                    break
                log.warning("refcat: %s archive failed (%s); retry %d in %.1f s", spec.survey, reason, attempt, pause)
                await self._sleep(pause)
                continue
            try:
                stars = _map(spec, table)
            except RefcatError as exc:
                return FetchOutcome("unreachable", f"no reference coverage from {spec.survey}: the archive's answer "
                                                   f"does not fit the {spec.preset} layout ({exc})")
            if len(table) >= spec.row_limit:
                return FetchOutcome("truncated", f"{spec.survey}: the archive answer was cut at {spec.row_limit} rows; "
                                                 f"used for this field but not cached", len(table), stars)
            return FetchOutcome("fetched", "", len(table), stars)
        tries = f" after {attempt + 1} attempts" if attempt else ""
        return FetchOutcome("unreachable", f"no reference coverage from {spec.survey}: archive unreachable "
                                           f"({spec.kind} {spec.table}: {reason}{tries})")


def _info(spec: ArchiveSpec) -> SurveyInfo:
    preset = get_preset(spec.preset)
    info = SurveyInfo.from_preset(preset, survey=spec.survey, derive=spec.derive)
    return dc_replace(info, description=f"{preset.description} (fetched from {spec.kind} {spec.table})",
                      source=spec.table)


def _map(spec: ArchiveSpec, table) -> StarColumns:
    """An archive answer as store columns, through the survey's preset (an empty answer: no stars)."""
    if len(table) == 0 or not table.colnames:
        return StarColumns(ra=np.zeros(0), dec=np.zeros(0), mags={}, errs={})
    preset = get_preset(spec.preset)
    mapping = preset.resolve(table.colnames)
    return mapping.apply(table)


def _circumscribe(region: Cone, tiles: np.ndarray) -> tuple[float, float, float]:
    """A cone (centre of the field) holding every tile entirely: radius to the farthest tile corner,
    plus a little for the curvature of tile edges."""
    import astropy.units as u

    lon, lat = grid().boundaries_lonlat(np.asarray(tiles, dtype=np.int64), step=2)
    ra = np.asarray(lon.to_value(u.deg)).ravel()
    dec = np.asarray(lat.to_value(u.deg)).ravel()
    radius = float(separation_deg(region.ra_deg, region.dec_deg, ra, dec).max()) + 0.5 / 60
    return region.ra_deg, region.dec_deg, max(radius, region.radius_deg)


# The archive names are defined in shared.refcat.archives; callers import them from here as well.
__all__ = ["ARCHIVES", "ArchiveError", "ArchiveSpec", "FetchOutcome", "OnlineSettings", "ReferenceSource",
           "cache_tiles", "call_with_deadline", "query_archive"]
