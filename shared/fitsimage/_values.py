"""Reading single header values: numbers in strings, sexagesimal angles, dates, filter names."""
from __future__ import annotations

import math
import re
import warnings

from astropy.coordinates import Angle
from astropy.io import fits
from astropy.time import Time
from astropy.utils.exceptions import AstropyWarning
from erfa import ErfaWarning

_EMPTY = {"", "N/A", "NA", "NONE", "UNKNOWN", "UNSPECIFIED", "NULL", "NAN", "-", "?"}


def text(header: fits.Header, key: str) -> str | None:
    """The keyword's value as stripped text, None when absent or a placeholder (N/A, UNKNOWN...)."""
    if key not in header:
        return None
    value = header[key]
    if value is None or isinstance(value, fits.card.Undefined):
        return None
    if isinstance(value, bool):
        return None
    out = str(value).strip()
    return None if out.upper() in _EMPTY else out


def number(header: fits.Header, key: str) -> float | None:
    """A finite float from a number or a numeric string, else None."""
    if key not in header:
        return None
    value = header[key]
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        v = float(value)
    else:
        s = text(header, key)
        if s is None:
            return None
        try:
            v = float(s.replace("D", "E").replace("d", "e"))
        except ValueError:
            return None
    return v if math.isfinite(v) else None


def comment(header: fits.Header, key: str | None) -> str:
    """The keyword's comment, lower-case ('' if none, or no keyword was found: ``key`` None)."""
    if key is None:
        return ""
    try:
        return str(header.comments[key]).lower()
    except (KeyError, IndexError):
        return ""


def angle_deg(header: fits.Header, key: str, *, hours: bool) -> float | None:
    """An angle in degrees from a float or a sexagesimal string.

    ``hours`` says whether the keyword holds right ascension in hours when given as a sexagesimal
    string; a float is read as degrees unless the comment says hours (``[h]``, ``hours``, ``hh``).
    """
    s = text(header, key)
    if s is None:
        return None
    cmt = comment(header, key)
    in_hours = bool(re.search(r"\[h\]|\bhours?\b|\bhh\b|\bhr\b|\[hh", cmt))
    try:
        v = float(s)
    except ValueError:
        v = None
    if v is not None:
        return v * 15.0 if in_hours else v
    s = s.replace("h", ":").replace("m", ":").replace("s", "").replace("d", ":").replace("'", ":").replace('"', "")
    s = re.sub(r"\s+", ":", s.strip()).strip(":")
    try:
        return float(Angle(s, unit="hourangle" if hours else "deg").degree)
    except (ValueError, TypeError):
        return None


def _time(value: str, scale: str) -> Time | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)  # "dubious year" for dates beyond the leap-second table
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            return Time(value, format="isot" if "T" in value else "iso", scale=scale)
        except ValueError:
            return None


def to_utc_mjd(t: Time) -> float:
    """MJD in UTC of an astropy Time."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)
        return float(t.utc.mjd)


def parse_date(value: str, time_of_day: str | float | None, scale: str) -> Time | None:
    """A Time from a FITS date (ISO with or without time; old ``DD/MM/YY``; ``YYYY/MM/DD``) and an
    optional time of day (``hh:mm:ss`` string or decimal hours)."""
    s = value.strip()
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{2})", s)  # FITS before 2000: DD/MM/YY, 19YY
    if m:
        s = f"19{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}"
    s = re.sub(r"^(\d{4})/(\d{2})/(\d{2})", r"\1-\2-\3", s)
    s = s.replace(" ", "T", 1) if re.match(r"\d{4}-\d{2}-\d{2} \d", s) else s
    if "T" not in s and time_of_day is not None:
        if isinstance(time_of_day, float):
            h = time_of_day % 24.0
            hh, rem = divmod(h * 3600.0, 3600.0)
            mm, ss = divmod(rem, 60.0)
            time_of_day = f"{int(hh):02d}:{int(mm):02d}:{ss:06.3f}"
        tod = str(time_of_day).strip()
        if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d*)?)?", tod):
            if tod.count(":") == 1:
                tod += ":00"
            if len(tod.split(":")[0]) == 1:
                tod = "0" + tod
            s = f"{s}T{tod}"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d*)?)?)?", s):
        return None
    if "T" not in s:
        s += "T00:00:00"
    return _time(s, scale)


# --- filters -------------------------------------------------------------------------------------

_CANONICAL = {
    "u": "u", "g": "g", "r": "r", "i": "i", "z": "z", "y": "y",
    "U": "U", "B": "B", "V": "V", "R": "R", "I": "I",
    "J": "J", "H": "H", "K": "K", "Ks": "Ks", "KS": "Ks", "Kp": "K", "G": "G",
}
_ALIASES = {  # lower-case aliases
    "up": "u", "u'": "u", "us": "u", "gp": "g", "g'": "g", "rp": "r", "r'": "r", "rs": "r", "r2": "r",
    "ip": "i", "i'": "i", "zp": "z", "z'": "z", "zs": "z", "rc": "R", "ic": "I", "ks": "Ks",
    "clear": "clear", "clr": "clear", "c": "clear", "cv": "clear", "cr": "clear", "cbb": "clear", "l": "clear",
    "lum": "clear", "luminance": "clear", "w": "clear", "open": "clear", "none": "clear", "empty": "clear",
    "white": "clear", "unfiltered": "clear", "air": "clear", "blue": "B", "visual": "V", "red": "R",
}
_NOISE = {"sdss", "bessell", "bessel", "johnson", "cousins", "sloan", "ps1", "panstarrs", "filter", "filt", "band",
          "prime", "astrodon", "baader", "gen2", "2mass", "mko", "std", "standard", "f", "ps", "wfcam", "ukirt"}


def normalise_filter(raw: str | None) -> str | None:
    """The canonical name of a filter (``r``, ``V``, ``Ks``, ``clear``...), None if not recognised.

    Case decides between Sloan and Johnson-Cousins names (``r`` vs ``R``); qualifiers such as
    ``SDSS``, ``Bessell``, primes and ``-band`` are ignored.
    """
    if raw is None:
        return None
    s = str(raw).strip().strip("'\"").strip()
    if not s:
        return None
    if s in _CANONICAL:
        return _CANONICAL[s]
    if s.lower() in _ALIASES:
        return _ALIASES[s.lower()]
    tokens = [t for t in re.split(r"[\s_\-/:,.()\[\]]+", s) if t]
    for tok in tokens:
        if tok.lower() in _NOISE:
            continue
        if tok in _CANONICAL:
            return _CANONICAL[tok]
        if tok.lower() in _ALIASES:
            return _ALIASES[tok.lower()]
    return None
