"""A seeded simulator of one calibration field: reference catalogue, observer's catalogue and the truth.

Pure and deterministic (numpy ``default_rng(seed)``, no I/O except the two ``write_*`` helpers). Used
for the demo, labelled synthetic wherever it is stored, and for benchmarks.

Model
-----
* The star population (this module's, also used by the injection-recovery simulator
  ``services/calibration/science/simulate.py``): magnitudes with rising number counts,
  dN/dm ∝ 10^(0.3 m) (:func:`number_count_mags`); g−r from a main-sequence-like distribution
  (mean 0.55, σ 0.28, clipped to [−0.3, 1.6]; :func:`draw_gr_mag`); the other bands on the lines of
  :func:`band_offsets`: r−i = 0.42 (g−r) − 0.03, and B, V after Jester et al. (2005, stars with
  R−I < 1.15): V = g − 0.59 (g−r) − 0.01, B = g + 0.39 (g−r) + 0.21, plus rough Gaia G, BP, RP; each
  colour scatters by :data:`COLOUR_SCATTER_MAG` (0.02 mag) about its line, so the bands are
  correlated as in a real catalogue.
* Stars are spread uniformly over a cone of ``radius_arcmin``; reference magnitudes (in r) between
  ``mag_range`` (default 11–19). Here g has no scatter about its line; i, V and B have.
* Reference errors grow with magnitude like APASS (≈0.015 mag bright, ≈0.15 mag at 19) and the
  catalogued magnitudes scatter by them; a few per cent of B and i values are missing.
* The observer's catalogue (SExtractor ASCII_HEAD text) holds the reference stars seen in ``band``:
  instrumental MAG_AUTO = true − zeropoint + noise, positions jittered by ``jitter_arcsec`` per axis,
  ``outlier_fraction`` of them shifted by 0.3–1.5 mag (mostly brighter: blends; half of them flagged 2),
  plus ``n_faint`` fainter stars (19.5–21.5) that are not in the reference catalogue, plus the target
  at the field centre if ``target_mag`` is given. No other star lies within 5" of the centre.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import MaskedColumn, Table
from numpy.typing import ArrayLike, NDArray

SYNTHETIC_VERSION = "synthetic-demo-1"
SYNTHETIC_DESCRIPTION = (
    "SYNTHETIC reference stars made by the seeded field simulator shared.simfield (APASS DR9 layout); "
    "not survey data"
)

#: Observed band -> column of the APASS DR9 VizieR layout.
APASS_COLUMNS = {"B": "Bmag", "V": "Vmag", "g": "g'mag", "r": "r'mag", "i": "i'mag"}
_BAND_ALIASES = {"g'": "g", "r'": "r", "i'": "i", "b": "B", "v": "V"}
CLEAR_RADIUS_ARCSEC = 5.0

#: g-r of the simulated stars: N(GR_MEAN_MAG, GR_SIGMA_MAG) clipped to GR_RANGE_MAG.
GR_MEAN_MAG = 0.55
GR_SIGMA_MAG = 0.28
GR_RANGE_MAG = (-0.3, 1.6)
#: Scatter of each star's colours about the lines of :func:`band_offsets`.
COLOUR_SCATTER_MAG = 0.02
#: Slope of the number counts, dN/dm ∝ 10^(slope m).
NUMBER_COUNT_SLOPE = 0.3

_CATALOGUE_HEADER = """\
#   1 NUMBER                 Running object number
#   2 MAG_AUTO               Kron-like elliptical aperture magnitude                    [mag]
#   3 MAGERR_AUTO            RMS error for AUTO magnitude                               [mag]
#   4 ALPHA_J2000            Right ascension of barycenter (J2000)                      [deg]
#   5 DELTA_J2000            Declination of barycenter (J2000)                          [deg]
#   6 FLAGS                  Extraction flags
"""


@dataclass(frozen=True)
class SimulatedField:
    """One simulated field. ``reference`` is an APASS DR9-layout Table, ``catalogue_text`` the
    observer's SExtractor ASCII_HEAD catalogue, ``truth`` what a calibration should recover."""

    reference: Table
    catalogue_text: str
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def catalogue(self) -> Table:
        from astropy.io import ascii

        return ascii.read(self.catalogue_text, format="sextractor")


def _normalise_band(band: str) -> str:
    b = _BAND_ALIASES.get(band, band)
    if b not in APASS_COLUMNS:
        raise ValueError(f"band must be one of {', '.join(APASS_COLUMNS)}, got {band!r}")
    return b


def number_count_mags(rng: np.random.Generator, n: int, lo: float, hi: float,
                      slope: float = NUMBER_COUNT_SLOPE) -> NDArray[np.float64]:
    """``n`` magnitudes with dN/dm ∝ 10^(slope m) on [lo, hi] (inverse-CDF sampling)."""
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    mags: NDArray[np.float64] = np.log10(a + rng.random(n) * (b - a)) / slope
    return mags


def draw_gr_mag(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """``n`` g-r colours of the simulated population (see :data:`GR_MEAN_MAG`)."""
    return np.clip(rng.normal(GR_MEAN_MAG, GR_SIGMA_MAG, n), *GR_RANGE_MAG)


def band_offsets(gr: ArrayLike) -> dict[str, NDArray[np.float64]]:
    """``m_band - m_r`` of every simulated band (B V g r i, Gaia G BP RP) for colour g-r, on the
    population's lines (without the scatter)."""
    gr = np.asarray(gr, dtype=float)
    bprp = 0.26 + 1.28 * gr
    g_ = 0.02 - 0.05 * gr
    bp = g_ - 0.05 + 0.37 * bprp
    return {"r": 0.0 * gr, "g": gr, "i": -(0.42 * gr - 0.03), "V": 0.41 * gr - 0.01, "B": 1.39 * gr + 0.21,
            "G": g_, "BP": bp, "RP": bp - bprp}


def _uniform_in_cone(rng: np.random.Generator, n: int, ra0: float, dec0: float,
                     radius_deg: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Uniform positions on the sphere within ``radius_deg`` of (ra0, dec0), exact at any declination."""
    cos_r = np.cos(np.radians(radius_deg))
    cos_rho = 1.0 - rng.random(n) * (1.0 - cos_r)
    rho = np.arccos(cos_rho)
    pa = rng.random(n) * 2 * np.pi
    return _offset(ra0, dec0, rho, pa)


def _offset(ra0: float | NDArray[np.float64], dec0: float | NDArray[np.float64], rho: NDArray[np.float64],
            pa: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Move from (ra0, dec0) by angle ``rho`` (rad) towards position angle ``pa`` (rad, east of north)."""
    d0, a0 = np.radians(dec0), np.radians(ra0)
    sin_d = np.sin(d0) * np.cos(rho) + np.cos(d0) * np.sin(rho) * np.cos(pa)
    dec = np.arcsin(np.clip(sin_d, -1, 1))
    ra = a0 + np.arctan2(np.sin(pa) * np.sin(rho) * np.cos(d0), np.cos(rho) - np.sin(d0) * sin_d)
    ra_deg: NDArray[np.float64] = np.mod(np.degrees(ra), 360.0)
    dec_deg: NDArray[np.float64] = np.degrees(dec)
    return ra_deg, dec_deg


def _separation_arcsec(ra0: float, dec0: float, ra: NDArray[np.float64],
                       dec: NDArray[np.float64]) -> NDArray[np.float64]:
    from astropy.coordinates import angular_separation

    sep = angular_separation(np.radians(ra0), np.radians(dec0), np.radians(ra), np.radians(dec))
    sep_arcsec: NDArray[np.float64] = np.degrees(np.asarray(sep, dtype=float)) * 3600.0
    return sep_arcsec


def _jitter(rng: np.random.Generator, ra: NDArray[np.float64], dec: NDArray[np.float64],
            sigma_arcsec: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    n = len(ra)
    dx = rng.normal(0.0, sigma_arcsec, n) / 3600.0
    dy = rng.normal(0.0, sigma_arcsec, n) / 3600.0
    return _offset_small(ra, dec, dx, dy)


def _offset_small(ra: NDArray[np.float64], dec: NDArray[np.float64], dx_deg: NDArray[np.float64],
                  dy_deg: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Exact spherical offsets (correct near the poles and across RA=0) by small east/north steps."""
    return _offset(np.asarray(ra, dtype=float), np.asarray(dec, dtype=float),
                   np.radians(np.hypot(dx_deg, dy_deg)), np.arctan2(dx_deg, dy_deg))


def apass_like_error(mag: ArrayLike, *, floor: float = 0.015, m_ref: float = 16.5,
                     at_ref: float = 0.03) -> NDArray[np.float64]:
    """Photometric error growing with magnitude: floor ⊕ at_ref·10^(0.4 (m − m_ref))."""
    return np.hypot(floor, at_ref * 10 ** (0.4 * (np.asarray(mag) - m_ref)))


def simulate_field(
    *,
    ra_deg: float,
    dec_deg: float,
    radius_arcmin: float = 10.0,
    n_stars: int = 400,
    seed: int = 0,
    zeropoint_mag: float = 25.0,
    band: str = "r",
    target_mag: float | None = 17.0,
    outlier_fraction: float = 0.05,
    mag_range: tuple[float, float] = (11.0, 19.0),
    n_faint: int | None = None,
    jitter_arcsec: float = 0.3,
    instrumental_noise_mag: float = 0.01,
    missing_fraction: float = 0.03,
) -> SimulatedField:
    """Simulate a field of ``n_stars`` reference stars around (ra_deg, dec_deg); see the module text."""
    band = _normalise_band(band)
    if n_stars < 0 or not (0.0 <= outlier_fraction <= 1.0):
        raise ValueError("n_stars must be >= 0 and outlier_fraction within [0, 1]")
    if not (-90.0 <= dec_deg <= 90.0) or radius_arcmin <= 0:
        raise ValueError("dec_deg must be within [-90, 90] and radius_arcmin positive")
    rng = np.random.default_rng(seed)
    radius_deg = radius_arcmin / 60.0
    n_faint = n_stars // 4 if n_faint is None else int(n_faint)

    # --- the stars: positions away from the centre, true magnitudes from a colour model
    ra, dec = _uniform_in_cone(rng, n_stars, ra_deg, dec_deg, radius_deg)
    clear_arcsec = CLEAR_RADIUS_ARCSEC + 5.0 * jitter_arcsec  # stays clear after the astrometric jitter
    for _ in range(100):  # redraw the few that fall near the target position
        close = _separation_arcsec(ra_deg, dec_deg, ra, dec) < clear_arcsec
        if not close.any():
            break
        ra[close], dec[close] = _uniform_in_cone(rng, int(close.sum()), ra_deg, dec_deg, radius_deg)
    r_true = number_count_mags(rng, n_stars, *mag_range)
    g_r = draw_gr_mag(rng, n_stars)
    off = band_offsets(g_r)
    true = {"r": r_true, "g": r_true + off["g"]}
    for b in ("i", "V", "B"):  # the scatter about the lines (i's drawn with the opposite sign)
        scatter = rng.normal(0, COLOUR_SCATTER_MAG, n_stars)
        true[b] = r_true + off[b] + (-scatter if b == "i" else scatter)

    # --- the reference catalogue (APASS DR9 VizieR layout)
    reference = Table()
    reference["RAJ2000"] = np.round(ra, 6)
    reference["DEJ2000"] = np.round(dec, 6)
    reference["RAJ2000"].unit = "deg"
    reference["DEJ2000"].unit = "deg"
    extra_err = {"B": 1.5, "V": 1.0, "g": 1.1, "r": 1.0, "i": 1.2}
    for b in ("B", "V", "g", "r", "i"):
        err = apass_like_error(true[b]) * extra_err[b]
        observed = true[b] + rng.normal(0.0, 1.0, n_stars) * err
        missing = rng.random(n_stars) < (missing_fraction if b in ("B", "i") else 0.0)
        col = APASS_COLUMNS[b]
        reference[col] = MaskedColumn(np.round(observed, 3), mask=missing, unit="mag")
        reference[f"e_{col}"] = MaskedColumn(np.round(np.maximum(err, 0.001), 3), mask=missing, unit="mag")
    # Short upper-case keys, so that the table also writes to FITS without HIERARCH warnings.
    reference.meta.update({"SYNTH": True, "DESCR": SYNTHETIC_DESCRIPTION, "SEED": int(seed), "LAYOUT": "II/336/apass9"})

    # --- the observer's catalogue
    obs_true = true[band]
    inst_err = np.hypot(instrumental_noise_mag, 0.02 * 10 ** (0.4 * (obs_true - 18.0)))
    inst = obs_true - zeropoint_mag + rng.normal(0.0, 1.0, n_stars) * inst_err
    flags = np.zeros(n_stars, dtype=int)
    n_out = int(round(outlier_fraction * n_stars))
    outliers = rng.choice(n_stars, size=n_out, replace=False) if n_out else np.array([], dtype=int)
    shift = rng.uniform(0.3, 1.5, n_out) * np.where(rng.random(n_out) < 0.8, -1.0, 1.0)
    inst[outliers] += shift
    flags[outliers] = np.where(rng.random(n_out) < 0.5, 2, 0)
    obs_ra, obs_dec = _jitter(rng, ra, dec, jitter_arcsec)

    f_ra, f_dec = _uniform_in_cone(rng, n_faint, ra_deg, dec_deg, radius_deg)
    keep = _separation_arcsec(ra_deg, dec_deg, f_ra, f_dec) >= clear_arcsec
    f_ra, f_dec = f_ra[keep], f_dec[keep]
    f_true = rng.uniform(19.5, 21.5, f_ra.size)
    f_err = np.hypot(instrumental_noise_mag, 0.02 * 10 ** (0.4 * (f_true - 18.0)))
    f_inst = f_true - zeropoint_mag + rng.normal(0.0, 1.0, f_ra.size) * f_err

    parts_ra = [obs_ra, f_ra]
    parts_dec = [obs_dec, f_dec]
    parts_mag = [inst, f_inst]
    parts_err = [inst_err, f_err]
    parts_flag = [flags, np.zeros(f_ra.size, dtype=int)]
    kind = ["reference"] * n_stars + ["faint"] * int(f_ra.size)
    target_inst = None
    if target_mag is not None:
        t_err = float(np.hypot(instrumental_noise_mag, 0.02 * 10 ** (0.4 * (target_mag - 18.0))))
        target_inst = float(target_mag - zeropoint_mag + rng.normal(0.0, t_err))
        t_ra, t_dec = _jitter(rng, np.array([ra_deg]), np.array([dec_deg]), jitter_arcsec)
        parts_ra.append(t_ra)
        parts_dec.append(t_dec)
        parts_mag.append(np.array([target_inst]))
        parts_err.append(np.array([t_err]))
        parts_flag.append(np.array([0]))
        kind.append("target")
    all_ra = np.concatenate(parts_ra)
    all_dec = np.concatenate(parts_dec)
    all_mag = np.concatenate(parts_mag)
    all_err = np.concatenate(parts_err)
    all_flag = np.concatenate(parts_flag)
    order = rng.permutation(all_ra.size)  # SExtractor does not list stars by brightness
    lines = [_CATALOGUE_HEADER]
    number_of = {}
    for number, k in enumerate(order, start=1):
        lines.append(f"{number:10d} {all_mag[k]:8.4f} {all_err[k]:8.4f} {all_ra[k]:12.7f} {all_dec[k]:+12.7f} "
                     f"{all_flag[k]:3d}\n")
        number_of[int(k)] = number
    text = "".join(lines)

    truth = {
        "zeropoint_mag": float(zeropoint_mag),
        "band": band,
        "target_mag": None if target_mag is None else float(target_mag),
        "target_instrumental_mag": target_inst,
        "target_ra_deg": float(ra_deg),
        "target_dec_deg": float(dec_deg),
        "target_number": number_of.get(all_ra.size - 1) if target_mag is not None else None,
        "n_reference": int(n_stars),
        "n_catalogue": int(all_ra.size),
        "n_faint_not_in_reference": int(f_ra.size),
        "outlier_numbers": sorted(number_of[int(k)] for k in outliers),
        "seed": int(seed),
        "synthetic": True,
    }
    return SimulatedField(reference=reference, catalogue_text=text, truth=truth)


def write_reference_csv(field: SimulatedField, path: str | Path) -> Path:
    """The reference catalogue as a VizieR-like CSV (missing values empty)."""
    path = Path(path)
    field.reference.write(path, format="ascii.csv", overwrite=True)
    return path


def write_catalogue(field: SimulatedField, path: str | Path) -> Path:
    """The observer's catalogue as a SExtractor ASCII_HEAD file."""
    path = Path(path)
    path.write_text(field.catalogue_text)
    return path


__all__ = [
    "APASS_COLUMNS", "SYNTHETIC_DESCRIPTION", "SYNTHETIC_VERSION", "SimulatedField", "apass_like_error",
    "simulate_field", "write_catalogue", "write_reference_csv",
]
