"""Online fill: the archives and their astroquery code paths, one blocking query each.

* VizieR (``astroquery.vizier.Vizier``, VOTable over HTTPS): APASS, ATLAS-RefCat2, Pan-STARRS1,
  SkyMapper, 2MASS, Gaia DR3 synthetic photometry;
* the Gaia archive TAP service (``astroquery.gaia.GaiaClass``, ADQL, VOTable): Gaia DR3;
* the SDSS SkyServer (``astroquery.sdss.SDSSClass.query_sql``, CSV): SDSS stars (PhotoPrimary, type 6).

Online access is off unless enabled per survey (``CPCS_REFCAT_ONLINE=APASS,GaiaDR3`` or ``all``):
the servers this runs on may have no internet, and an operator decides what may be fetched
(:class:`OnlineSettings`). Failures become an :class:`ArchiveError` with a sentence and whether another
attempt may pass; :func:`call_with_deadline` bounds a call that would otherwise wait forever. What is
fetched, and how it is cached in the store, is :mod:`shared.refcat.providers`.
"""
from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .presets import RefcatError
from .surveys import canonical_name


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


class OnlineSettings(BaseSettings):
    """Which archives may be asked, and how patiently (environment prefix ``CPCS_REFCAT_``).

    ``enabled`` (``CPCS_REFCAT_ONLINE``): survey names, comma-separated (or "all"); empty = offline (the
    default); a name without an archive is refused. ``timeout_s``: the hard limit for one survey's
    archive exchange, retries included. ``retries``/``backoff_s``: further attempts after a failure that
    may pass (timeout, refused connection, HTTP 5xx), waiting backoff_s, 2 backoff_s, ...
    Servers (for mirrors, and for tests): ``vizier_server`` (host[:port], HTTPS as astroquery uses),
    ``gaia_server`` and ``sdss_server`` (base URLs).
    """

    model_config = SettingsConfigDict(env_prefix="CPCS_REFCAT_", extra="ignore", frozen=True,
                                      populate_by_name=True)

    enabled: Annotated[frozenset[str], NoDecode] = Field(frozenset(), validation_alias="CPCS_REFCAT_ONLINE")
    timeout_s: float = 30.0
    retries: int = 2
    backoff_s: float = 1.0
    vizier_server: str | None = None
    gaia_server: str | None = None
    sdss_server: str | None = None
    sdss_release: int = 17

    @field_validator("enabled", mode="before")
    @classmethod
    def _survey_names(cls, value: Any) -> frozenset[str]:
        names = value.split(",") if isinstance(value, str) else list(value or ())
        enabled = frozenset(str(n).strip() for n in names if str(n).strip())
        unknown = sorted(n for n in enabled
                         if n.lower() != "all" and canonical_name(n).lower() not in {s.lower() for s in ARCHIVES})
        if unknown:
            raise ValueError(f"CPCS_REFCAT_ONLINE names {', '.join(unknown)}, which has no archive; known: "
                             f"{', '.join(ARCHIVES)} or all")
        return enabled

    @field_validator("vizier_server", "gaia_server", "sdss_server", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None

    def is_enabled(self, survey: str) -> bool:
        names = {canonical_name(n).lower() for n in self.enabled}
        return "all" in names or canonical_name(survey).lower() in names

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OnlineSettings:
        """From ``CPCS_REFCAT_ONLINE``, ``CPCS_REFCAT_TIMEOUT_S``, ``CPCS_REFCAT_RETRIES``,
        ``CPCS_REFCAT_BACKOFF_S``, ``CPCS_REFCAT_VIZIER_SERVER``, ``CPCS_REFCAT_GAIA_SERVER``,
        ``CPCS_REFCAT_SDSS_SERVER``, ``CPCS_REFCAT_SDSS_RELEASE`` (of the process, or of ``environ``);
        ``RefcatError`` in one line for a value refused."""
        try:
            if environ is None:
                return cls()
            prefix = "CPCS_REFCAT_"
            values: dict[str, Any] = {k[len(prefix):].lower(): v for k, v in environ.items()
                                      if k.upper().startswith(prefix) and k.upper() != "CPCS_REFCAT_ONLINE"}
            values = {k: v for k, v in values.items() if k in cls.model_fields}
            if "CPCS_REFCAT_ONLINE" in environ:
                values["enabled"] = environ["CPCS_REFCAT_ONLINE"]
            return cls.model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            name = "ONLINE" if error["loc"][:1] in (("enabled",), ("CPCS_REFCAT_ONLINE",)) else str(error["loc"][0])
            message = str(error["msg"]).removeprefix("Value error, ")
            if not message.startswith("CPCS_REFCAT_"):
                message = f"CPCS_REFCAT_{name.upper()}: {message}, got {error.get('input')!r}"
            raise RefcatError(message) from None


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
    if (isinstance(exc, (requests.ConnectionError, ConnectionError, OSError))
            and not isinstance(exc, requests.HTTPError)):
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


__all__ = ["ARCHIVES", "ArchiveError", "ArchiveSpec", "OnlineSettings", "call_with_deadline", "query_archive"]
