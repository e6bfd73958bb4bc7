"""Header standardisation: whatever keywords a camera writes -> one :class:`ObservationHeader`.

The starting point is the keyword table of the CPCS 2.0 slides (OBSERVAT, LONGITUD, LATITUDE,
DATE-OBS + TIME-OBS, JD of mid-exposure, EXPTIME, BIN, GAIN, RDNOISE, SATURATE, CDELT, FILTER, RA,
DEC, CRVAL...), widened with the spellings of real headers (MaxIm DL OBJCTRA/OBJCTDEC and
XBINNING, LCO CCDSUM/PIXSCALE, SDSS TAIHMS in TAI, ESO-MIDAS DD/MM/YY dates and TM-START, UKIDSS
TELRA in hours and PIXLSIZE, HIERARCH ESO ...). Precedence and conventions:

* **Time.** A mid-exposure keyword (MJD-MID, MJD-AVG, DATE-AVG, JDMID) wins; else DATE-OBS with a
  time; else DATE-OBS's date with a time of day (TIME-OBS, UT, UTSTART, TAIHMS, TM-START seconds);
  else MJD-OBS; else JD. TIMESYS (TAI, TT) is honoured; the record is UTC. When DATE-OBS and
  MJD-OBS disagree by more than a minute, DATE-OBS wins and a note says so (ESO-MIDAS wrote
  JD - 2400000 as MJD-OBS). ``mjd_mid = mjd_start + exptime / 2``.
* **Site.** The observatory record wins (it knows its sign convention: east positive); header
  longitudes are read east-positive unless their comment says west.
* **Gain, read noise, saturation, pixel scale.** The header wins when its value is plausible (a
  zero gain is not); the observatory record fills the gaps; the pixel scale of the record is for
  unbinned pixels and is multiplied by the binning. Read noise is in electrons unless the comment
  says ADU.
* **Pointing.** OBJCTRA/OBJCTDEC, RA/DEC, OBJRA/OBJDEC, CAT-RA/CAT-DEC, TELRA/TELDEC, RABASE/DECBASE:
  sexagesimal strings are hours for RA; floats are degrees unless the comment says hours. The
  header WCS centre is kept apart (``wcs_centre_*``): astrometry does not trust it blindly.
* **Airmass.** AIRMASS (or SECZ, or the mean of AMSTART/AMEND); else computed from the pointing, the
  mid-exposure time and the site (Kasten & Young 1989), noted as computed.
* **Upload values** (the form's MJD, expTime, filter) fill what the header lacks.
"""
from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from shared.fitsimage._values import angle_deg, comment, normalise_filter, number, parse_date, text, to_utc_mjd
from shared.fitsimage.model import ObservationHeader

__all__ = ["calibration_refusal", "header_wcs", "missing_for_calibration", "standardise_header"]

_MID_TIME = (("MJD-MID", "mjd"), ("MJD-AVG", "mjd"), ("MJDMID", "mjd"), ("DATE-AVG", "date"), ("JDMID", "jd"),
             ("JD-MID", "jd"))
_TIME_OF_DAY = ("TIME-OBS", "UT", "UTSTART", "UT-START", "UTC-OBS", "UTOBS", "TAIHMS", "TM-START", "UTC")
_EXPTIME = ("EXPTIME", "EXPOSURE", "EXPTIM", "EXP_TIME", "ITIME", "TEXP", "EXPOSED")
_FILTER = ("FILTER", "FILTNAME", "FILTER1", "FILTER2", "FILTER3", "FILT", "BAND", "WFFBAND", "ESO INS FILT1 NAME",
           "ESO INS FILT2 NAME")
_LON = ("SITELONG", "LONGITUD", "LONG-OBS", "OBS-LONG", "GEOLON", "LONGITUDE", "ESO TEL GEOLON")
_LAT = ("SITELAT", "LATITUDE", "LAT-OBS", "OBS-LAT", "GEOLAT", "ESO TEL GEOLAT")
_ALT = ("SITEELEV", "HEIGHT", "OBS-ELEV", "ELEVATIO", "ALT-OBS", "ESO TEL GEOELEV")
_GAIN = ("GAIN", "EGAIN", "CCDGAIN", "GAIN1", "ESO DET OUT1 CONAD")
_RDNOISE = ("RDNOISE", "READNOIS", "READNOISE", "RON", "RDNOISE1", "ESO DET OUT1 RON")
_SATURATE = ("SATURATE", "SATLEVEL", "SATURATION", "SATUR", "SATURLEV", "MAXLIN")
_SCALE = ("PIXSCALE", "PIXSCAL1", "SECPIX", "SECPIX1", "PIXSCL", "PIXLSIZE", "SCALE")
_POINTING = (("OBJCTRA", "OBJCTDEC"), ("RA", "DEC"), ("OBJRA", "OBJDEC"), ("RA_OBJ", "DEC_OBJ"),
             ("CAT-RA", "CAT-DEC"), ("TELRA", "TELDEC"), ("RABASE", "DECBASE"), ("RA_DEG", "DEC_DEG"))
_CLEAR_WORDS = {"clear", "air", "open", "none", "empty"}
_T = TypeVar("_T")


def _as_header(header: fits.Header | Mapping[str, Any] | None) -> fits.Header:
    if isinstance(header, fits.Header):
        return header
    out = fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        for key, value in dict(header or {}).items():
            try:
                out[str(key)] = value
            except (ValueError, KeyError):
                continue
    return out


def header_wcs(header: fits.Header | Mapping[str, Any] | None) -> WCS | None:
    """The header's celestial WCS, or None when there is none (or it cannot be parsed).

    astropy's ``FITSFixedWarning`` (it fixes old keywords) is expected and silenced here.
    """
    header = _as_header(header)
    ctype1 = str(header.get("CTYPE1", "")).upper()
    ctype2 = str(header.get("CTYPE2", "")).upper()
    if not (ctype1.startswith("RA") and ctype2.startswith("DEC")) and not (
            ctype1.startswith("DEC") and ctype2.startswith("RA")):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wcs = WCS(header, naxis=2, relax=True, fix=True)
        except Exception:  # astropy raises many kinds for broken WCS headers
            return None
    if not wcs.has_celestial:
        return None
    try:
        cd = wcs.pixel_scale_matrix
        if not np.all(np.isfinite(cd)) or abs(np.linalg.det(cd)) == 0:
            return None
    except Exception:
        return None
    return wcs


def _first_number(header: fits.Header, keys: Iterable[str], *, low: float = -math.inf,
                  high: float = math.inf) -> tuple[float | None, str | None]:
    for key in keys:
        v = number(header, key)
        if v is not None and low < v < high:
            return v, key
    return None, None


def _time_of_day(header: fits.Header) -> tuple[str | float | None, str | None]:
    for key in _TIME_OF_DAY:
        if key not in header:
            continue
        s = text(header, key)
        if s is None:
            continue
        if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d*)?)?", s):
            return s, key
        v = number(header, key)
        if v is None:
            continue
        cmt = comment(header, key)
        if key in ("TM-START", "UTC") or v >= 24.0 or re.search(r"\bs\b|sec|\[s\]", cmt):
            if 0 <= v < 86400:
                return v / 3600.0, key
        elif 0 <= v < 24:
            return float(v), key
    return None, None


def _scale_of(header: fits.Header) -> str:
    ts = (text(header, "TIMESYS") or "UTC").upper()
    return {"TAI": "tai", "TT": "tt", "TDT": "tt", "GPS": "tai"}.get(ts, "utc")


def _read_time(header: fits.Header, exptime: float | None,
               notes: list[str]) -> tuple[float | None, float | None, str | None]:
    """(mjd_start, mjd_mid, source) in UTC."""
    scale = _scale_of(header)
    half = (exptime or 0.0) / 2.0 / 86400.0
    for key, kind in _MID_TIME:
        if kind == "date":
            s = text(header, key)
            t = parse_date(s, None, scale) if s else None
            mid = to_utc_mjd(t) if t is not None and s is not None and "T" in s else None
        else:
            v = number(header, key)
            mid = None if v is None else (v - 2400000.5 if kind == "jd" else v)
        if mid is not None and 10000 < mid < 100000:
            return mid - half, mid, f"header {key} (mid-exposure)"
    date = text(header, "DATE-OBS")
    from_date, date_source = None, None
    if date is not None:
        tod, tod_key = _time_of_day(header)
        t = parse_date(date, tod, scale)
        if t is not None and (re.search(r"\d[T ]\d", date) or tod is not None):
            from_date = to_utc_mjd(t)
            date_source = "header DATE-OBS" + (f" + {tod_key}" if tod_key and not re.search(r"\d[T ]\d", date) else "")
            if scale != "utc":
                date_source += f" ({scale.upper()})"
        elif t is None:
            notes.append(f"DATE-OBS {date!r} is not a date this server can read")
    mjd_obs, mjd_key = _first_number(header, ("MJD-OBS", "MJD_OBS"), low=10000, high=100000)
    if from_date is not None:
        if mjd_obs is not None and abs(mjd_obs - from_date) * 86400 > 60:
            notes.append(f"{mjd_key} = {mjd_obs} disagrees with {date_source} (MJD {from_date:.5f}) by "
                         f"{(mjd_obs - from_date) * 24:+.2f} h; {date_source} is used")
        return from_date, from_date + half, date_source
    if mjd_obs is not None:
        mid = "mid" in comment(header, mjd_key)
        start = mjd_obs - half if mid else mjd_obs
        return start, start + half, f"header {mjd_key}"
    jd, jd_key = _first_number(header, ("JD", "JD-OBS", "JD_OBS", "JULIAN"), low=2410000, high=2500000)
    if jd is not None:
        mjd = jd - 2400000.5
        mid = bool(re.search(r"mid|middle|cent", comment(header, jd_key)))
        start = mjd - half if mid else mjd
        return start, start + half, f"header {jd_key}"
    if date is not None and from_date is None:
        notes.append(f"DATE-OBS {date!r} gives no time of day and no other time keyword was found")
    return None, None, None


def _filter(header: fits.Header, notes: list[str]) -> tuple[str | None, str | None, str | None]:
    """(raw, normalised, keyword) of the filter: the first recognised non-clear name wins."""
    found: list[tuple[str, str | None, str]] = []
    for key in _FILTER:
        raw = text(header, key)
        if raw is not None:
            found.append((raw, normalise_filter(raw), key))
    for i in range(1, 12):  # old ESO: INS OPTI-n TYPE = FILTER, NAME = R
        if str(header.get(f"ESO INS OPTI-{i} TYPE", "")).strip().upper() == "FILTER":
            raw = text(header, f"ESO INS OPTI-{i} NAME")
            if raw is not None:
                found.append((raw, normalise_filter(raw), f"ESO INS OPTI-{i} NAME"))
    named = [f for f in found if f[1] is not None and f[1] != "clear"]
    if named:
        return named[0]
    clear = [f for f in found if f[1] == "clear" or f[0].lower() in _CLEAR_WORDS]
    if clear and len(clear) == len(found):
        return clear[0][0], "clear", clear[0][2]
    if found:
        raw, _, key = found[0]
        notes.append(f"{key} = {raw!r} is not a filter name this server recognises")
        return raw, None, key
    return None, None, None


def _binning(header: fits.Header) -> tuple[tuple[int, int] | None, str | None]:
    pairs = (("XBINNING", "YBINNING"), ("BINX", "BINY"), ("CCDXBIN", "CCDYBIN"), ("COLBIN", "ROWBIN"),
             ("HBIN", "VBIN"), ("CCDBIN1", "CCDBIN2"))
    for kx, ky in pairs:
        bx, by = number(header, kx), number(header, ky)
        if bx and by and 1 <= bx <= 16 and 1 <= by <= 16:
            return (int(bx), int(by)), f"header {kx}/{ky}"
    for key in ("CCDSUM", "BINNING", "BIN"):
        s = text(header, key)
        if s:
            m = re.fullmatch(r"(\d+)\s*[x ,]?\s*(\d+)?", s.lower())
            if m:
                bx = int(m.group(1))
                by = int(m.group(2) or m.group(1))
                if 1 <= bx <= 16 and 1 <= by <= 16:
                    return (bx, by), f"header {key}"
    return None, None


def _pointing(header: fits.Header, notes: list[str]) -> tuple[float | None, float | None, str | None]:
    for kra, kdec in _POINTING:
        if kra not in header or kdec not in header:
            continue
        ra = angle_deg(header, kra, hours=True)
        dec = angle_deg(header, kdec, hours=False)
        if ra is None or dec is None or not (-90.0 <= dec <= 90.0) or not (0.0 <= ra < 360.0 + 1e-9):
            notes.append(f"pointing {kra}/{kdec} = {header.get(kra)!r}/{header.get(kdec)!r} could not be read")
            continue
        equinox = number(header, "EQUINOX") or number(header, "EPOCH")
        if equinox is not None and abs(equinox - 1950.0) < 0.5:
            import astropy.units as u
            from astropy.coordinates import FK4, SkyCoord

            c = SkyCoord(ra * u.deg, dec * u.deg, frame=FK4(equinox="B1950")).icrs
            ra, dec = float(c.ra.deg), float(c.dec.deg)
            notes.append(f"pointing {kra}/{kdec} precessed from B1950")
        return ra % 360.0, dec, f"header {kra}/{kdec}"
    return None, None, None


def _site(header: fits.Header, notes: list[str]) -> tuple[float | None, float | None, float | None, str | None]:
    lon, lat, alt, src = None, None, None, None
    for key in _LON:
        v = angle_deg(header, key, hours=False)
        if v is not None:
            if re.search(r"\bwest\b|\[deg w|\bw\b", comment(header, key)):
                v = -v
            lon = ((v + 180.0) % 360.0) - 180.0
            src = f"header {key}"
            break
    for key in _LAT:
        v = angle_deg(header, key, hours=False)
        if v is not None and -90 <= v <= 90:
            lat = v
            break
    alt, _ = _first_number(header, _ALT, low=-500, high=6000)
    if lat is None and lon is None and all(k in header for k in ("OBSGEO-X", "OBSGEO-Y", "OBSGEO-Z")):
        import astropy.units as u
        from astropy.coordinates import EarthLocation

        xyz = [v for k in ("OBSGEO-X", "OBSGEO-Y", "OBSGEO-Z") if (v := number(header, k)) is not None]
        if len(xyz) == 3 and math.hypot(*xyz) > 6e6:
            loc = EarthLocation.from_geocentric(*xyz, unit=u.m)
            lon, lat, alt = float(loc.lon.deg), float(loc.lat.deg), float(loc.height.to_value(u.m))
            src = "header OBSGEO-X/Y/Z"
    if lat is None:
        lon = None
    return lon, lat, alt, src


def airmass_from(ra_deg: float, dec_deg: float, mjd_utc: float, lon_deg: float, lat_deg: float) -> float | None:
    """Airmass (Kasten & Young 1989) of a pointing at a time and site; None below the horizon.

    Uses the mean sidereal time from UTC (UT1 - UTC below a second is irrelevant here).
    """
    d = mjd_utc - 51544.5
    gmst_deg = (280.46061837 + 360.98564736629 * d) % 360.0
    ha = math.radians((gmst_deg + lon_deg - ra_deg) % 360.0)
    lat, dec = math.radians(lat_deg), math.radians(dec_deg)
    sin_alt = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(ha)
    alt_deg = math.degrees(math.asin(max(-1.0, min(1.0, sin_alt))))
    if alt_deg <= 0:
        return None
    return float(1.0 / (math.sin(math.radians(alt_deg)) + 0.50572 * (alt_deg + 6.07995) ** -1.6364))


def standardise_header(header: fits.Header | Mapping[str, Any] | None, *, observatory: Mapping[str, Any] | None = None,
                       upload: Mapping[str, Any] | None = None) -> ObservationHeader:
    """Read an image header into the internal :class:`ObservationHeader`.

    Parameters
    ----------
    header : astropy.io.fits.Header or mapping
        The image header (for a multi-extension file, the merged header of :func:`read_image`).
    observatory : mapping, optional
        The observatory record: ``name``, ``lon_deg`` (east positive), ``lat_deg``, ``alt_m``,
        ``gain`` (e-/ADU), ``read_noise`` (e-), ``saturation_adu``, ``pixel_scale_arcsec``
        (unbinned), ``filters`` (a list of names, or a mapping from what the camera writes in
        FILTER to a name: ``{"2 1": "V"}``).
    upload : mapping, optional
        Values given with the upload: ``mjd`` (mid-exposure, UTC), ``exptime_s``, ``filter``.
        They fill what the header lacks.

    Returns
    -------
    ObservationHeader
        Values, where each came from (``sources``) and what was doubtful (``notes``).
    """
    h = _as_header(header)
    obs = dict(observatory or {})
    up = dict(upload or {})
    notes: list[str] = []
    sources: dict[str, str] = {}

    def put(name: str, value: _T, source: str | None) -> _T:
        if value is not None and source:
            sources[name] = source
        return value

    exptime, key = _first_number(h, _EXPTIME, low=0.0, high=1e6)
    exptime = put("exptime_s", exptime, key and f"header {key}")
    if exptime is None and up.get("exptime_s") is not None and float(up["exptime_s"]) > 0:
        exptime = put("exptime_s", float(up["exptime_s"]), "upload")
    start, mid, tsrc = _read_time(h, exptime, notes)
    if start is None and up.get("mjd") is not None and float(up["mjd"]) > 10000:
        mid = float(up["mjd"])  # a typed MJD is mid-exposure, for images as for catalogues
        start = mid - (exptime or 0.0) / 2.0 / 86400.0
        tsrc = "upload (mid-exposure)"
    put("mjd_start", start, tsrc)
    put("mjd_mid", mid, tsrc and (tsrc + ("" if "mid" in tsrc else " + EXPTIME/2")))

    f_raw, f_norm, f_key = _filter(h, notes)
    obs_filters = obs.get("filters")
    if f_norm is None and f_raw is not None and isinstance(obs_filters, Mapping) and f_raw in obs_filters:
        f_norm = normalise_filter(str(obs_filters[f_raw])) or str(obs_filters[f_raw])
        put("filter", f_norm, f"observatory filter map ({f_raw!r})")
    elif f_norm is not None:
        put("filter", f_norm, f"header {f_key}")
    if f_norm is None and up.get("filter"):
        f_norm = put("filter", normalise_filter(str(up["filter"])), "upload")
        f_raw = f_raw or str(up["filter"])
    if f_norm is None and isinstance(obs_filters, (list, tuple)) and len(obs_filters) == 1:
        f_norm = put("filter", normalise_filter(str(obs_filters[0])), "observatory record (its only filter)")

    lon, lat, alt, site_src = _site(h, notes)
    if obs.get("lat_deg") is not None and obs.get("lon_deg") is not None:
        o_lon, o_lat = float(obs["lon_deg"]), float(obs["lat_deg"])
        if lat is not None and lon is not None and (
                abs(o_lat - lat) > 0.5 or abs(((o_lon - lon + 180) % 360) - 180) > 0.5):
            notes.append(f"the header site ({lon:.3f}, {lat:.3f}) differs from the observatory record "
                         f"({o_lon:.3f}, {o_lat:.3f}); the record is used")
        lon, lat, site_src = o_lon, o_lat, "observatory record"
        alt = float(obs["alt_m"]) if obs.get("alt_m") is not None else alt
    put("site_lon_deg", lon, site_src)
    put("site_lat_deg", lat, site_src)
    site_name = obs.get("name") or text(h, "OBSERVAT") or text(h, "SITE") or text(h, "SITEID")

    gain, gkey = _first_number(h, _GAIN, low=0.01, high=1000.0)
    if gain is not None and re.search(r"adu/e|adu per e", comment(h, gkey)):
        gain = 1.0 / gain
    gain = put("gain_e_per_adu", gain, gkey and f"header {gkey}")
    if gain is None and obs.get("gain"):
        gain = put("gain_e_per_adu", float(obs["gain"]), "observatory record")
    rn, rkey = _first_number(h, _RDNOISE, low=0.0, high=1000.0)
    if rn is not None and re.search(r"\badu\b|\bcounts?\b|\bdn\b", comment(h, rkey)) and "e" not in comment(
            h, rkey).split("adu")[0][-3:]:
        if gain:
            rn *= gain
            notes.append(f"{rkey} is in ADU: converted to electrons with the gain")
        else:
            rn = None
    rn = put("read_noise_e", rn, rkey and f"header {rkey}")
    if rn is None and obs.get("read_noise") is not None:
        rn = put("read_noise_e", float(obs["read_noise"]), "observatory record")
    sat, skey = _first_number(h, _SATURATE, low=0.0, high=1e12)
    sat = put("saturation_adu", sat, skey and f"header {skey}")
    if sat is None and obs.get("saturation_adu"):
        sat = put("saturation_adu", float(obs["saturation_adu"]), "observatory record")

    binning, bsrc = _binning(h)
    put("binning", binning, bsrc)
    wcs = header_wcs(h)
    wcs_ra = wcs_dec = None
    nx, ny = int(h.get("NAXIS1", 0) or 0), int(h.get("ZNAXIS1", 0) or 0)
    nx = int(h.get("ZNAXIS1", h.get("NAXIS1", 0)) or 0)
    ny = int(h.get("ZNAXIS2", h.get("NAXIS2", 0)) or 0)
    scale, key = _first_number(h, _SCALE, low=0.01, high=100.0)
    put("pixel_scale_arcsec", scale, key and f"header {key}")
    if wcs is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ra_c, dec_c = wcs.all_pix2world([[(nx - 1) / 2.0, (ny - 1) / 2.0]], 0)[0]
            wscale = float(np.sqrt(np.prod(proj_plane_pixel_scales(wcs.celestial))) * 3600.0)
        if np.isfinite(ra_c) and np.isfinite(dec_c):
            wcs_ra, wcs_dec = float(ra_c) % 360.0, float(dec_c)
            put("wcs_centre_ra_deg", wcs_ra, "header WCS")
        if scale is None and 0.01 < wscale < 100:
            scale = put("pixel_scale_arcsec", wscale, "header WCS (CD/CDELT)")
    if scale is None:
        pix_um, focal_mm = number(h, "XPIXSZ") or number(h, "PIXSIZE1"), number(h, "FOCALLEN")
        if pix_um and focal_mm and focal_mm > 10:
            scale = put("pixel_scale_arcsec", 206.264806 * pix_um / focal_mm, "header XPIXSZ/FOCALLEN")
    if scale is None and obs.get("pixel_scale_arcsec"):
        b = binning[0] if binning else 1
        scale = put("pixel_scale_arcsec", float(obs["pixel_scale_arcsec"]) * b,
                    "observatory record" + (f" x binning {b}" if b != 1 else ""))

    p_ra, p_dec, psrc = _pointing(h, notes)
    put("pointing_ra_deg", p_ra, psrc)

    am, akey = _first_number(h, ("AIRMASS", "SECZ", "ESO TEL AIRM START"), low=1.0 - 1e-6, high=40.0)
    am = put("airmass", am, akey and f"header {akey}")
    if am is None:
        a0, a1 = number(h, "AMSTART"), number(h, "AMEND")
        if a0 and a1 and a0 >= 1 and a1 >= 1:
            am = put("airmass", (a0 + a1) / 2.0, "header AMSTART/AMEND")
    if am is None:
        ra_any = p_ra if p_ra is not None else wcs_ra
        dec_any = p_dec if p_dec is not None else wcs_dec
        if ra_any is not None and dec_any is not None and mid is not None and lon is not None and lat is not None:
            am = put("airmass", airmass_from(ra_any, dec_any, mid, lon, lat),
                     "computed from the pointing, mid-exposure time and site")

    return ObservationHeader(
        mjd_start=start, mjd_mid=mid, exptime_s=exptime, filter_raw=f_raw, filter=f_norm,
        site_name=str(site_name) if site_name else None, site_lon_deg=lon, site_lat_deg=lat, site_alt_m=alt,
        telescope=text(h, "TELESCOP"), instrument=text(h, "INSTRUME"), observer=text(h, "OBSERVER"),
        object_name=text(h, "OBJECT"), image_type=text(h, "IMAGETYP") or text(h, "OBSTYPE"),
        gain_e_per_adu=gain, read_noise_e=rn, saturation_adu=sat, pixel_scale_arcsec=scale, binning=binning,
        pointing_ra_deg=p_ra, pointing_dec_deg=p_dec, wcs_centre_ra_deg=wcs_ra, wcs_centre_dec_deg=wcs_dec,
        has_celestial_wcs=wcs is not None, airmass=am, bunit=text(h, "BUNIT"),
        naxis=(nx, ny) if nx and ny else None, sources=sources, notes=tuple(notes),
    )


def missing_for_calibration(record: ObservationHeader) -> list[str]:
    """What a calibrated light-curve point needs and the record still lacks (empty when complete).

    Parameters
    ----------
    record : ObservationHeader

    Returns
    -------
    list of str
        Phrases such as ``"the observation time (DATE-OBS with a time, MJD-OBS or JD; or the
        upload's MJD)"``.
    """
    missing = []
    if record.mjd_start is None:
        missing.append("the observation time (DATE-OBS with a time, MJD-OBS or JD in the header, or the "
                       "upload's MJD)")
    if record.exptime_s is None:
        missing.append("the exposure time (EXPTIME in the header, or the upload's expTime)")
    return missing


def calibration_refusal(record: ObservationHeader) -> str | None:
    """One sentence refusing the image when something needed is missing, else None."""
    missing = missing_for_calibration(record)
    if not missing:
        return None
    return ("the image cannot be calibrated without " + " and ".join(missing)
            + ": add the keywords to the header or give them with the upload.")
