"""Where and when a packet says its transient is: WhereWhen first, then RA/Dec Params; times to UTC MJD."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from services.ingest.voevents._xml import Param, text

_COORDS = "WhereWhen/ObsDataLocation/ObservationLocation"
_RA_NAMES = {"ra", "raj2000", "ra_deg", "ra_j2000", "alpha"}
_DEC_NAMES = {"dec", "decl", "dej2000", "dec_deg", "dec_j2000", "delta"}
_TIME_SCALES = {"UTC", "TT", "TDB", "TCB", "TCG", "TAI"}
_UNIT_DEG = {"deg": 1.0, "degree": 1.0, "degrees": 1.0, "rad": 180 / math.pi, "arcmin": 1 / 60, "arcsec": 1 / 3600}


@dataclass(frozen=True)
class Position:
    """A sky position in decimal degrees (ICRS/FK5 J2000 taken alike), with the stream's error radius."""

    ra_deg: float
    dec_deg: float
    error_radius_deg: float | None  # None when not given or given as 0 (unknown)
    source: str  # "WhereWhen" or "Params"
    system: str | None = None


def read_position(root: etree._Element, params: list[Param]) -> tuple[Position | None, str | None, list[str]]:
    """The position, or None with the reason it could not be read; plus notes."""
    notes: list[str] = []
    position, problem = _wherewhen_position(root)
    if position is None or (position.ra_deg == 0 and position.dec_deg == 0):
        from_params = _param_position(params, notes)
        if from_params is not None:
            if position is not None:
                notes.append("WhereWhen gives RA=0, Dec=0; the RA/Dec Params were used instead")
            return from_params, None, notes
    return position, problem, notes


def _wherewhen_position(root: etree._Element) -> tuple[Position | None, str | None]:
    where = root.find(f"{_COORDS}/AstroCoords/Position2D")
    if where is None:
        return None, "the packet gives no position (no Position2D in WhereWhen, no RA/Dec Params)"
    scale = _UNIT_DEG.get((where.get("unit") or "deg").lower())
    if scale is None:
        return None, f"the position is in unit {where.get('unit')!r}, which we do not read"
    names = (text(where, "Name1"), text(where, "Name2"))
    if names != (None, None) and (str(names[0]).upper(), str(names[1]).upper()) != ("RA", "DEC"):
        return None, f"the position is given as {names[0]}/{names[1]}, not RA/Dec"
    c1, c2 = _number(text(where, "Value2/C1")), _number(text(where, "Value2/C2"))
    if c1 is None or c2 is None:
        return None, "the position in WhereWhen has no usable RA/Dec values"
    error = _number(text(where, "Error2Radius"))
    system = root.find(f"{_COORDS}/AstroCoordSystem")
    return Position(ra_deg=c1 * scale, dec_deg=c2 * scale,
                    error_radius_deg=error * scale if error else None, source="WhereWhen",
                    system=system.get("id") if system is not None else None), None


def _param_position(params: list[Param], notes: list[str]) -> Position | None:
    ra = _find(params, _RA_NAMES, "pos.eq.ra;meta.main")
    dec = _find(params, _DEC_NAMES, "pos.eq.dec;meta.main")
    if ra is None or dec is None:
        return None
    try:
        ra_deg, dec_deg = _angle(ra, hours_if_sexagesimal=True), _angle(dec, hours_if_sexagesimal=False)
    except ValueError as exc:
        notes.append(f"the RA/Dec Params ({ra.value!r}, {dec.value!r}) could not be read: {exc}")
        return None
    return Position(ra_deg=ra_deg, dec_deg=dec_deg, error_radius_deg=None, source="Params")


def _find(params: list[Param], names: set[str], ucd: str) -> Param | None:
    for param in params:
        if param.value and ((param.name or "").lower() in names or param.ucd.lower() == ucd):
            return param
    return None


def _angle(param: Param, *, hours_if_sexagesimal: bool) -> float:
    from astropy import units as u
    from astropy.coordinates import Angle

    value = param.value or ""
    plain = _number(value)
    if plain is not None:
        return plain * (15.0 if param.unit.lower() in {"h", "hour", "hours", "hourangle"} else 1.0)
    unit = u.hourangle if hours_if_sexagesimal else u.deg
    return float(Angle(value, unit=unit).to_value(u.deg))


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def read_time(root: etree._Element, params: list[Param]) -> tuple[str | None, str, float | None, list[str]]:
    """(ISO time as written, its time scale, MJD in UTC) of the observation in WhereWhen, and notes."""
    iso = text(root, f"{_COORDS}/AstroCoords/Time/TimeInstant/ISOTime")
    scale = _time_scale(root, params)
    if iso is None:
        return None, scale, None, []
    try:
        return iso, scale, to_utc_mjd(iso, scale), []
    except ValueError as exc:
        return iso, scale, None, [f"the observation time {iso!r} could not be read: {exc}"]


def _time_scale(root: etree._Element, params: list[Param]) -> str:
    for param in params:
        if param.ucd == "time.scale" and (param.value or "").upper() in _TIME_SCALES:
            return param.value.upper()
    system = root.find(f"{_COORDS}/AstroCoordSystem")
    token = (system.get("id") or "").split("-")[0].upper() if system is not None else ""
    return token if token in _TIME_SCALES else "UTC"


def to_utc_mjd(iso: str, scale: str = "UTC") -> float:
    """MJD (UTC) of an ISO 8601 time in the given scale. A barycentric time stays barycentric."""
    from astropy.time import Time
    from erfa import ErfaWarning

    moment = parse_datetime(iso)
    if moment.tzinfo is not None:  # an explicit offset means civil time
        moment, scale = moment.astimezone(UTC).replace(tzinfo=None), "UTC"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)  # beyond the leap-second table: last offset kept
        return float(Time(moment, scale=scale.lower()).utc.mjd)


def parse_datetime(iso: str) -> datetime:
    try:
        return datetime.fromisoformat(iso.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time: {iso!r}") from exc
