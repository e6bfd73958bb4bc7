"""What a packet says about its transient: the stream's name for it, a web page, its own photometry."""
from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from services.ingest.voevents._xml import Param

_ID_UCDS = {"meta.id", "meta.id;meta.main"}
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_MAG_NAME = re.compile(r"^(?:mag[_ ]?(?P<after>[A-Za-z]{1,2})|(?P<before>[A-Za-z]{1,2})[_ ]?mag)$", re.IGNORECASE)
_BAND_UCD = re.compile(r"em\.(?:opt|IR)\.(?P<band>[A-Za-z]{1,2})\b")
# display names of the survey behind a stream, where the IVORN's last path segment does not say it
SURVEYS = (("ivo://gaia.cam.uk/", "Gaia"), ("ivo://gaia.cam.ac.uk/", "Gaia"),
           ("ivo://voevent.4pisky.org/ASASSN", "ASAS-SN"))


@dataclass(frozen=True)
class AlertMagnitude:
    mag: float
    mag_err: float | None
    band: str


def transient_name(params: list[Param], stream: str) -> str | None:
    """The stream's own name for the transient (``Gaia16aac``, ``S200302c``, ``SWIFT_655721``).

    Taken from the first Param whose UCD is ``meta.id`` (named or not). A bare number (a GCN trigger
    id) is only unique within its mission, so the stream's last path segment is put before it.
    """
    for param in params:
        if param.ucd in _ID_UCDS and param.value:
            name = _SAFE.sub("_", param.value).strip("_")
            if name.isdigit():
                name = f"{stream_segment(stream)}_{name}"
            return name or None
    return None


def stream_segment(stream: str) -> str:
    path = stream.removeprefix("ivo://").rstrip("/")
    return _SAFE.sub("_", path.rsplit("/", 1)[-1]) or "stream"


def survey_name(stream: str) -> str:
    for prefix, name in SURVEYS:
        if stream.startswith(prefix):
            return name
    return stream_segment(stream)


def event_url(root: etree._Element, params: list[Param]) -> str:
    reference = root.find("What/Reference")
    if reference is not None and reference.get("uri"):
        return reference.get("uri").strip()
    for param in params:
        if param.group is None and param.ucd == "meta.ref.url" and param.value:
            return param.value
    return ""


def alert_magnitudes(params: list[Param], notes: list[str]) -> tuple[list[AlertMagnitude], float | None]:
    """The stream's own magnitudes of the transient, and a historic (baseline) magnitude if given.

    A magnitude is a Param whose UCD starts with ``phot.mag`` (not an error); its error is the
    ``phot.mag;stat.error`` Param beside it; its band comes from the UCD (``em.opt.V``), the name
    (``mag_v``) or the packet's ``instr.bandpass`` Param. A Group named ``historic...`` holds the
    long-term average, which has no epoch and so is no light-curve point.
    """
    bandpass = next((p.value for p in params if p.ucd == "instr.bandpass" and p.value), None)
    found, baseline = [], None
    for param in params:
        ucd = param.ucd.split(";")
        if ucd[0] != "phot.mag" or "stat.error" in ucd:
            continue
        if param.value is None:
            notes.append(f"the magnitude Param {_label(param)} is empty")
            continue
        mag = _float(param.value)
        if mag is None or not -5 < mag < 35:
            notes.append(f"the magnitude Param {_label(param)} = {param.value!r} is not a magnitude")
            continue
        if (param.group or "").lower().startswith("historic"):
            baseline = mag
            continue
        band = _band(param, bandpass)
        if band is None:
            notes.append(f"the magnitude Param {_label(param)} names no band; it is not kept")
            continue
        found.append(AlertMagnitude(mag=mag, mag_err=_error_of(param, params), band=band))
    return found, baseline


def _band(param: Param, bandpass: str | None) -> str | None:
    by_ucd = _BAND_UCD.search(param.ucd)
    if by_ucd:
        return by_ucd.group("band")
    by_name = _MAG_NAME.match(param.name or "")
    if by_name:
        band = by_name.group("after") or by_name.group("before")
        return band.upper() if len(band) == 1 and band.lower() in "ubvri" else band
    return bandpass


def _error_of(param: Param, params: list[Param]) -> float | None:
    """The error Param named after the magnitude (``averagemag error``), else the group's only one."""
    errors = [other for other in params if other.group == param.group and other.value
              and other.ucd.startswith("phot.mag") and "stat.error" in other.ucd.split(";")]
    named = [e for e in errors if param.name and (e.name or "").startswith(param.name)]
    chosen = named[0] if named else (errors[0] if len(errors) == 1 else None)
    error = _float(chosen.value) if chosen is not None else None
    return error if error is not None and error >= 0 else None


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _label(param: Param) -> str:
    return repr(param.name) if param.name else "(unnamed)"
