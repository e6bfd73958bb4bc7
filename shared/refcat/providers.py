"""Reference stars from the local store first, from the online archives (through astroquery) when the
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
a hang, and the other surveys still answer.

Archives, each through its astroquery code path:

* VizieR (``astroquery.vizier.Vizier``, VOTable over HTTPS): APASS, ATLAS-RefCat2, Pan-STARRS1,
  SkyMapper, 2MASS, Gaia DR3 synthetic photometry;
* the Gaia archive TAP service (``astroquery.gaia.GaiaClass``, ADQL, VOTable): Gaia DR3;
* the SDSS SkyServer (``astroquery.sdss.SDSSClass.query_sql``, CSV): SDSS stars (PhotoPrimary, type 6).

Online access is off unless enabled per survey (``CPCS_REFCAT_ONLINE=APASS,GaiaDR3`` or ``all``):
the servers this runs on may have no internet, and an operator decides what may be fetched.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from dataclasses import dataclass, field, replace as dc_replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import coverage as cov
from .healpix import grid, separation_deg
from .presets import RefcatError, StarColumns, get_preset
from .surveys import canonical_name
from .store import Cone, QueryResult, RefcatStore, SurveyCoverage, SurveyInfo, _assemble, _cone_region, _restrict_bands

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchiveSpec:
    """One survey's table in one archive.

    ``kind``: "vizier", "gaia" or "sdss". ``table``: the VizieR catalogue id, the ADQL table, or the
    SkyServer view. ``columns``: what to ask for (names of the survey's preset). ``dec_range``: the
    survey's footprint in declination. ``mag_column``/``mag_limit``: a faint limit applied by the archive
    (keeps crowded fields to a sensible size). ``row_limit``: an answer of that many rows is taken as
    truncated: its stars are used for the field but not cached. ``derive``: bands the cached survey
    derives at query time (e.g. ``("B", "V", "R", "I")`` for SDSS; none by default).
    """

    survey: str
    kind: str
    table: str
    preset: str
    columns: tuple[str, ...] = ()
    dec_range: tuple[float, float] = (-90.0, 90.0)
    mag_column: str = ""
    mag_limit: float | None = None
    row_limit: int = 50_000
    derive: tuple[str, ...] = ()  # bands to derive at query time (shared.refcat.derived), e.g. B V R I for SDSS

    @property
    def origin(self) -> str:
        return f"archive:{self.kind}:{self.table}"


def _vizier(survey, table, preset, columns, **kw) -> ArchiveSpec:
    return ArchiveSpec(survey=survey, kind="vizier", table=table, preset=preset, columns=tuple(columns), **kw)


#: The archives known for each survey (the survey names of :mod:`shared.refcat.presets`).
ARCHIVES: dict[str, ArchiveSpec] = {
    "APASS": _vizier("APASS", "II/336/apass9", "apass9",
                     ["RAJ2000", "DEJ2000", "Bmag", "e_Bmag", "Vmag", "e_Vmag", "g'mag", "e_g'mag", "r'mag",
                      "e_r'mag", "i'mag", "e_i'mag"]),
    "ATLAS": _vizier("ATLAS", "J/ApJ/867/105/refcat2", "atlas-refcat2",
                     ["RA_ICRS", "DE_ICRS", "pmRA", "pmDE", "gmag", "e_gmag", "rmag", "e_rmag", "imag", "e_imag",
                      "zmag", "e_zmag"], mag_column="rmag", mag_limit=19.0),
    "PS1": _vizier("PS1", "II/349/ps1", "ps1",
                   ["RAJ2000", "DEJ2000", "gmag", "e_gmag", "rmag", "e_rmag", "imag", "e_imag", "zmag", "e_zmag",
                    "ymag", "e_ymag"], dec_range=(-30.0, 90.0), mag_column="rmag", mag_limit=20.0),
    "SkyMapper": _vizier("SkyMapper", "II/358/smss", "skymapper",
                         ["RAICRS", "DEICRS", "uPSF", "e_uPSF", "vPSF", "e_vPSF", "gPSF", "e_gPSF", "rPSF", "e_rPSF",
                          "iPSF", "e_iPSF", "zPSF", "e_zPSF"], dec_range=(-90.0, 2.0)),
    "2MASS": _vizier("2MASS", "II/246/out", "2mass",
                     ["RAJ2000", "DEJ2000", "Jmag", "e_Jmag", "Hmag", "e_Hmag", "Kmag", "e_Kmag"]),
    "GaiaSP": _vizier("GaiaSP", "I/360/syntphot", "gaiadr3-syntphot", ["*"]),
    "GaiaDR3": ArchiveSpec(
        survey="GaiaDR3", kind="gaia", table="gaiadr3.gaia_source", preset="gaiadr3",
        columns=("source_id", "ra", "dec", "pmra", "pmdec", "phot_g_mean_mag", "phot_g_mean_flux_over_error",
                 "phot_bp_mean_mag", "phot_bp_mean_flux_over_error", "phot_rp_mean_mag",
                 "phot_rp_mean_flux_over_error"),
        mag_column="phot_g_mean_mag", mag_limit=19.0),
    "SDSS": ArchiveSpec(
        survey="SDSS", kind="sdss", table="PhotoPrimary", preset="sdss12",
        columns=("objID", "ra", "dec") + tuple(f"{p}_{b}" for b in "ugriz" for p in ("psfMag", "psfMagErr")),
        mag_column="psfMag_r", mag_limit=21.0),
}


@dataclass(frozen=True)
class OnlineSettings:
    """Which archives may be asked, and how patiently.

    ``enabled``: survey names (or {"all"}); empty = offline (the default). ``timeout_s``: the hard limit
    for one survey's archive exchange, retries included. ``retries``/``backoff_s``: further attempts after
    a failure that may pass (timeout, refused connection, HTTP 5xx), waiting backoff_s, 2 backoff_s, ...
    Servers (for mirrors, and for tests): ``vizier_server`` (host[:port], HTTPS as astroquery uses),
    ``gaia_server`` and ``sdss_server`` (base URLs).
    """

    enabled: frozenset[str] = frozenset()
    timeout_s: float = 30.0
    retries: int = 2
    backoff_s: float = 1.0
    vizier_server: str | None = None
    gaia_server: str | None = None
    sdss_server: str | None = None
    sdss_release: int = 17

    def is_enabled(self, survey: str) -> bool:
        names = {canonical_name(n).lower() for n in self.enabled}
        return "all" in names or canonical_name(survey).lower() in names

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "OnlineSettings":
        """From ``CPCS_REFCAT_ONLINE`` (comma-separated survey names, or "all"), ``CPCS_REFCAT_TIMEOUT_S``,
        ``CPCS_REFCAT_RETRIES``, ``CPCS_REFCAT_BACKOFF_S``, ``CPCS_REFCAT_VIZIER_SERVER``,
        ``CPCS_REFCAT_GAIA_SERVER``, ``CPCS_REFCAT_SDSS_SERVER``."""
        env = os.environ if environ is None else environ
        enabled = frozenset(n.strip() for n in env.get("CPCS_REFCAT_ONLINE", "").split(",") if n.strip())
        unknown = [n for n in enabled
                   if n.lower() != "all" and canonical_name(n).lower() not in {s.lower() for s in ARCHIVES}]
        if unknown:
            raise RefcatError(f"CPCS_REFCAT_ONLINE names {', '.join(unknown)}, which has no archive; known: "
                              f"{', '.join(ARCHIVES)} or all")
        return cls(
            enabled=enabled, timeout_s=float(env.get("CPCS_REFCAT_TIMEOUT_S", cls.timeout_s)),
            retries=int(env.get("CPCS_REFCAT_RETRIES", cls.retries)),
            backoff_s=float(env.get("CPCS_REFCAT_BACKOFF_S", cls.backoff_s)),
            vizier_server=env.get("CPCS_REFCAT_VIZIER_SERVER") or None,
            gaia_server=env.get("CPCS_REFCAT_GAIA_SERVER") or None,
            sdss_server=env.get("CPCS_REFCAT_SDSS_SERVER") or None,
        )


class ArchiveError(Exception):
    """An archive exchange failed; ``retry`` says whether another attempt may pass."""

    def __init__(self, reason: str, *, retry: bool):
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


# ----------------------------------------------------------------------------- astroquery code paths


def query_archive(spec: ArchiveSpec, settings: OnlineSettings, ra_deg: float, dec_deg: float, radius_deg: float,
                  timeout_s: float):
    """One blocking archive query (runs in a worker thread): an astropy Table (possibly empty)."""
    try:
        if spec.kind == "vizier":
            return _vizier_query(spec, settings, ra_deg, dec_deg, radius_deg, timeout_s)
        if spec.kind == "gaia":
            return _gaia_query(spec, settings, ra_deg, dec_deg, radius_deg)
        if spec.kind == "sdss":
            return _sdss_query(spec, settings, ra_deg, dec_deg, radius_deg, timeout_s)
    except ArchiveError:
        raise
    except Exception as exc:
        raise _classify(exc, timeout_s) from None
    raise ArchiveError(f"unknown archive kind {spec.kind!r}", retry=False)


def _empty():
    from astropy.table import Table

    return Table()


def _vizier_query(spec, settings, ra, dec, radius, timeout_s):
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astroquery.vizier import Vizier

    options: dict[str, Any] = {"columns": list(spec.columns) or ["*"], "row_limit": spec.row_limit,
                               "timeout": timeout_s}
    if settings.vizier_server:
        options["vizier_server"] = settings.vizier_server
    if spec.mag_column and spec.mag_limit is not None:
        options["column_filters"] = {spec.mag_column: f"<{spec.mag_limit}"}
    viz = Vizier(**options)
    found = viz.query_region(SkyCoord(ra, dec, unit="deg", frame="icrs"), radius=radius * u.deg,
                             catalog=spec.table, cache=False, frame="icrs")
    if found is None or len(found) == 0:
        return _empty()
    if isinstance(found, str):
        raise ArchiveError("VizieR sent an answer that is not a table", retry=False)
    keys = list(found.keys())
    return found[spec.table] if spec.table in keys else found[0]


def _gaia_query(spec, settings, ra, dec, radius):
    from astroquery.gaia import GaiaClass

    options: dict[str, Any] = {"show_server_messages": False}
    if settings.gaia_server:
        options.update(gaia_tap_server=settings.gaia_server, gaia_data_server=settings.gaia_server)
    gaia = GaiaClass(**options)
    where = f"1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra:.8f}, {dec:.8f}, {radius:.8f}))"
    if spec.mag_column and spec.mag_limit is not None:
        where += f" AND {spec.mag_column} < {spec.mag_limit}"
    adql = f"SELECT TOP {spec.row_limit} {', '.join(spec.columns)} FROM {spec.table} WHERE {where}"
    job = gaia.launch_job(adql, output_format="votable")
    return job.get_results()


def _sdss_query(spec, settings, ra, dec, radius, timeout_s):
    from astroquery.sdss import SDSSClass, conf

    cols = ", ".join(f"p.{c}" for c in spec.columns)
    sql = (f"SELECT TOP {spec.row_limit} {cols} FROM {spec.table} AS p "
           f"JOIN dbo.fGetNearbyObjEq({ra:.8f}, {dec:.8f}, {radius * 60:.6f}) AS n ON n.objID = p.objID "
           f"WHERE p.type = 6")
    if spec.mag_column and spec.mag_limit is not None:
        sql += f" AND p.{spec.mag_column} < {spec.mag_limit}"
    server = settings.sdss_server or conf.skyserver_baseurl
    with conf.set_temp("skyserver_baseurl", server.rstrip("/")):
        result = SDSSClass().query_sql(sql, data_release=settings.sdss_release, timeout=timeout_s, cache=False)
    return _empty() if result is None else result


def _classify(exc: BaseException, timeout_s: float) -> ArchiveError:
    """A sentence for an astroquery/requests/http.client failure, and whether to retry."""
    import requests

    text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (requests.Timeout, socket.timeout, TimeoutError)):
        return ArchiveError(f"no answer within {timeout_s:.0f} s", retry=True)
    if isinstance(exc, (requests.ConnectionError, ConnectionError, OSError)) and not isinstance(exc, requests.HTTPError):
        return ArchiveError(f"cannot connect ({text})", retry=True)
    if isinstance(exc, requests.HTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status is None:
            digits = [w for w in text.replace(":", " ").split() if w.isdigit() and len(w) == 3]
            status = int(digits[0]) if digits else None
        return ArchiveError(f"the archive answered with an error ({text})", retry=status is None or status >= 500)
    return ArchiveError(f"the archive's answer could not be used ({type(exc).__name__}: {text})", retry=False)


async def call_with_deadline(fn: Callable[[], Any], timeout_s: float, *, name: str = "refcat-archive") -> Any:
    """Run blocking ``fn`` in a daemon thread and wait at most ``timeout_s``: TimeoutError after that,
    even when ``fn`` never returns (its thread is abandoned; being a daemon it does not keep the process
    alive). Used because not every astroquery client has a read timeout (the Gaia TAP client has none)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def settle(value, error):
        if not future.done():
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

    def work():
        try:
            value, error = fn(), None
        except BaseException as exc:  # delivered to the waiting coroutine
            value, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:
            pass  # the event loop is gone: nobody waits any more

    threading.Thread(target=work, name=name, daemon=True).start()
    return await asyncio.wait_for(future, timeout_s)


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
        self.settings = settings or OnlineSettings()
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
        region = _cone_region(ra_deg, dec_deg, radius_deg)
        online = {n.lower(): n for n in self.online_surveys()}
        wanted_online = list(dict.fromkeys(online[canonical_name(s).lower()] for s in (surveys or online.values())
                                           if canonical_name(s).lower() in online))
        outcomes: dict[str, SurveyCoverage] = {}
        extra: list = []
        if wanted_online:
            results = await asyncio.gather(*(self._ensure(name, region) for name in wanted_online))
            for name, (coverage, stars) in zip(wanted_online, results):
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
            docs, _, _ = self.store._block_documents(name, "transient", 0, columns)
            got = _assemble(record, docs, region, bands=bands, mag_limits=mag_limits, epoch_jyear=epoch_jyear)
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
                stored, ok = await self.store.add_fetched(info, outcome.stars, tiles.tolist(), origin=spec.origin,
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
                    lambda: self._query(spec, settings, ra_q, dec_q, radius_q, max(0.1, remaining)), remaining,
                    name=f"refcat-{spec.survey}")
            except (TimeoutError, asyncio.TimeoutError):
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


__all__ = ["ARCHIVES", "ArchiveError", "ArchiveSpec", "OnlineSettings", "ReferenceSource", "call_with_deadline",
           "query_archive"]
