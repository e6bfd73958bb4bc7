"""Seeded simulations of an observer's catalogue and its reference surveys, with the truth.

For injection-recovery tests and ``bench/accuracy.py``. Pure numpy, deterministic for a given
:class:`FieldSpec` (``numpy.random.default_rng(seed)``).

Model
-----
* The star population is the demo field's (:mod:`shared.simfield`): magnitudes with rising number
  counts (dN/dm ~ 10^(0.3 m), :func:`~shared.simfield.number_count_mags`), g-r ~ N(0.55, 0.28)
  clipped to [-0.3, 1.6] (:func:`~shared.simfield.draw_gr_mag`), the other bands on the lines of
  :func:`~shared.simfield.band_offsets`: r-i = 0.42 (g-r) - 0.03, V-r = 0.41 (g-r) - 0.01,
  B-r = 1.39 (g-r) + 0.21 (Jester et al. 2005, approximately), and for Gaia G-r = 0.02 - 0.05 (g-r),
  BP-RP = 0.26 + 1.28 (g-r), BP-G = 0.37 (BP-RP) - 0.05 (rough linear versions of the published
  Gaia-SDSS relations: G is close to r, BP has V's colour dependence); here every band but r
  scatters by 0.02 mag about its line (:data:`COLOUR_SCATTER_MAG`).
* Stars uniformly over a disc of ``field_radius_arcmin``; magnitudes from 12 (or 4 mag above the
  depth) to 1 mag below the depth, drawn until exactly ``n_catalogue`` of them are detected (plus
  the target and junk rows). No star but the target lies within ``clear_arcsec`` of the event
  position.
* The instrument sees band ``band`` with a colour term: the natural magnitude is
  ``x = m_band + colour_term * c`` with ``c`` the band's natural colour (B-V for B and V, g-r for g
  and r, r-i for i), zero at colour 0; ``m_inst = x + zeropoint_mag + N(0, intrinsic_scatter_mag)``
  plus the photometric noise.
* Photometric noise in flux: background-limited S/N 5 at ``x = depth_mag``, source noise equal to
  the background ``source_noise_mag`` brighter. A star is in the catalogue when its *measured*
  S/N reaches ``cut_snr``; its quoted error is ``1.0857 / (measured S/N)`` (as SExtractor).
* Outliers: a fraction ``outlier_fraction`` of the detected stars (never the target) is displaced:
  70 % brighter by 0.1-2 mag (blends), 30 % by 0.2-2 mag either way (defects, variables); their
  quoted errors follow the displaced flux, as a photometry program's would.
* Astrometry: catalogue position = truth + ``offset_arcsec`` + Gaussian jitter of
  ``hypot(jitter_arcsec, fwhm_arcsec / (2.35 S/N))`` per axis; APASS-like positions jitter by
  ``apass_jitter_arcsec``, Gaia-like by 2 mas.
* References: "APASS" (B V g r i; r brighter than ``apass_depth_mag``; errors rising from 0.015 mag;
  a few B and i values missing) and, when ``with_gaia``, "GaiaDR3" (G BP RP to G = 20.7).
* The target (if ``target_snr`` is given): a star of the field's colour distribution at the event
  position whose true S/N is ``target_snr``; detected or not by the same rule. ``target_known``
  puts it in the references too (0.7 mag fainter, same colours), as for a variable star.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.catalogue.model import StarTable
from shared.refcat.model import ReferenceStars
from shared.simfield import (
    COLOUR_SCATTER_MAG,
    GR_MEAN_MAG,
    GR_RANGE_MAG,
    GR_SIGMA_MAG,
    band_offsets,
    draw_gr_mag,
    number_count_mags,
)

__all__ = ["COLOUR_SCATTER_MAG", "FieldSpec", "SimulatedField", "SimulationTruth", "band_offsets", "simulate"]

NATURAL_COLOUR = {"B": ("B", "V"), "V": ("B", "V"), "g": ("g", "r"), "r": ("g", "r"), "i": ("r", "i")}
_BG_SIGMA = 0.2  # background flux noise in units of the flux at depth_mag: S/N 5 there
_AS = 1.0 / 3600.0


@dataclass(frozen=True)
class FieldSpec:
    """Everything that defines one simulated observation (see the module text)."""

    seed: int = 0
    n_catalogue: int = 300
    band: str = "r"
    declared_filter: str | None = "r"
    declared_in_header: bool = True
    zeropoint_mag: float = -22.0
    colour_term: float = 0.0
    intrinsic_scatter_mag: float = 0.02
    outlier_fraction: float = 0.1
    target_snr: float | None = 50.0
    target_known: bool = False
    depth_mag: float = 19.5
    source_noise_mag: float = 3.0
    cut_snr: float = 5.0
    jitter_arcsec: float = 0.3
    offset_arcsec: tuple[float, float] = (0.0, 0.0)
    fwhm_arcsec: float = 2.0
    with_gaia: bool = True
    apass_depth_mag: float = 17.0
    apass_jitter_arcsec: float = 0.2
    ra_deg: float = 150.0
    dec_deg: float = 20.0
    field_radius_arcmin: float = 8.0
    clear_arcsec: float = 6.0
    n_junk_rows: int = 0


@dataclass(frozen=True)
class SimulationTruth:
    """What a calibration of a :class:`SimulatedField` should recover.

    ``zeropoint_mag`` and ``colour_term`` define ``m_inst = m_band + ZP + k c`` for the observed
    band; ``zeropoint_at_median_mag`` is that at the field's median natural colour
    ``median_colour_mag``. ``depth_mag`` is the true detection threshold of the catalogue in the
    observed band for a star of the target's colour (the field's median colour when there is no
    target): the magnitude of true S/N ``max(limit_sigma, cut_snr)`` (a catalogue cut at S/N 10
    cannot support a 5-sigma limit).
    """

    band: str
    colour_name: str
    zeropoint_mag: float
    colour_term: float
    intrinsic_scatter_mag: float
    median_gr_mag: float
    median_colour_mag: float
    zeropoint_at_median_mag: float
    target_present: bool
    target_detected: bool
    target_known: bool
    target_snr: float | None
    target_gr_mag: float | None
    target_mags: dict[str, float] | None
    depth_mag: float
    limit_sigma: float
    cut_snr: float
    jitter_arcsec: float
    offset_arcsec: tuple[float, float]
    n_outliers: int
    n_catalogue: int
    declared_filter: str | None

    def depth_in(self, band: str) -> float:
        """The true depth expressed in another band (for the target's or the median colour)."""
        gr = self.target_gr_mag if self.target_gr_mag is not None else self.median_gr_mag
        off = band_offsets(gr)
        return float(self.depth_mag + off[band] - off[self.band])

    def zeropoint_at(self, colour_mag: float) -> float:
        """``m_inst - m_band`` at a natural colour (noise-free)."""
        return float(self.zeropoint_mag + self.colour_term * colour_mag)


@dataclass(frozen=True)
class SimulatedField:
    """The simulated upload: the catalogue, the references, the event position and the truth."""

    stars: StarTable
    references: list[ReferenceStars]
    target_ra_deg: float
    target_dec_deg: float
    declared_filter_argument: str | None
    truth: SimulationTruth
    extra: dict[str, Any] = field(default_factory=dict)


def _flux_for_snr(snr: float | NDArray[np.float64], f_eq: float) -> NDArray[np.float64]:
    """Flux (units of the flux at depth) with S/N ``snr``: F^2 = snr^2 bg^2 (1 + F / f_eq)."""
    a = np.asarray(snr, dtype=float) ** 2 * _BG_SIGMA**2
    return (a / f_eq + np.sqrt((a / f_eq) ** 2 + 4.0 * a)) / 2.0


def _natural_colour(band: str, mags: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
    blue, red = NATURAL_COLOUR[band]
    return mags[blue] - mags[red]


def _star_mags(rng: np.random.Generator, r: NDArray[np.float64], gr: NDArray[np.float64]
               ) -> dict[str, NDArray[np.float64]]:
    off = band_offsets(gr)
    return {b: r + off[b] + (0.0 if b == "r" else rng.normal(0.0, COLOUR_SCATTER_MAG, r.size)) for b in off}


def _positions(rng: np.random.Generator, n: int, spec: FieldSpec,
               cos_d: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rad = spec.field_radius_arcmin * 60.0 * np.sqrt(rng.random(n))
    pa = rng.uniform(0, 2 * np.pi, n)
    x, y = rad * np.sin(pa), rad * np.cos(pa)
    for _ in range(100):
        close = np.hypot(x, y) < spec.clear_arcsec
        if not close.any():
            break
        k = int(close.sum())
        rad = spec.field_radius_arcmin * 60.0 * np.sqrt(rng.random(k))
        pa = rng.uniform(0, 2 * np.pi, k)
        x[close], y[close] = rad * np.sin(pa), rad * np.cos(pa)
    return x, y


def _observe(rng: np.random.Generator, x_nat: NDArray[np.float64], spec: FieldSpec,
             f_eq: float) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Measured flux, S/N and detection of stars of natural magnitude ``x_nat``."""
    flux = 10 ** (-0.4 * (x_nat - spec.depth_mag))
    sigma = _BG_SIGMA * np.sqrt(1.0 + flux / f_eq)
    measured = flux + rng.normal(0.0, 1.0, flux.size) * sigma
    sigma_m = _BG_SIGMA * np.sqrt(1.0 + np.maximum(measured, 0.0) / f_eq)
    snr = measured / sigma_m
    return measured, snr, snr >= spec.cut_snr


def simulate(spec: FieldSpec, *, limit_sigma: float = 5.0) -> SimulatedField:
    """Simulate one observation (see the module text).

    Parameters
    ----------
    spec : FieldSpec
        The observation.
    limit_sigma : float, optional
        Sigma level of the true depth recorded in the truth.

    Returns
    -------
    SimulatedField
        Deterministic for a given ``spec``.
    """
    if spec.band not in NATURAL_COLOUR:
        raise ValueError(f"band must be one of {', '.join(NATURAL_COLOUR)}")
    rng = np.random.default_rng(spec.seed)
    cos_d = math.cos(math.radians(spec.dec_deg))
    k = spec.colour_term
    f_eq = 10 ** (0.4 * spec.source_noise_mag)
    m_cut = spec.depth_mag - 2.5 * math.log10(float(_flux_for_snr(spec.cut_snr, f_eq)))
    lo, hi = min(12.0, spec.depth_mag - 4.0), spec.depth_mag + 1.0

    def frac_below(m: float) -> float:
        return (10 ** (0.3 * m) - 10 ** (0.3 * lo)) / (10 ** (0.3 * hi) - 10 ** (0.3 * lo))

    n_batch = max(int(round(spec.n_catalogue / max(frac_below(min(m_cut, hi)), 1e-3))), 8)
    parts: list[dict[str, NDArray[Any]]] = []  # float columns and the detection mask
    n_det = 0
    while not parts or n_det < spec.n_catalogue:  # draw until exactly n_catalogue field stars are detected
        r_band = number_count_mags(rng, n_batch, lo, hi)
        gr_b = draw_gr_mag(rng, n_batch)
        mags_b = _star_mags(rng, r_band, gr_b)
        shift = mags_b[spec.band] - r_band  # the number counts apply to the observed band
        mags_b = {b: m - shift for b, m in mags_b.items()}
        x_nat_b = mags_b[spec.band] + k * _natural_colour(spec.band, mags_b)
        meas_b, snr_b, det_b = _observe(rng, x_nat_b, spec, f_eq)
        x_b, y_b = _positions(rng, n_batch, spec, cos_d)
        parts.append(dict(gr=gr_b, measured=meas_b, snr=snr_b, det=det_b, x=x_b, y=y_b,
                          **{f"m_{b}": m for b, m in mags_b.items()}))
        n_det += int(det_b.sum())
    stars = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    last = int(np.flatnonzero(stars["det"])[spec.n_catalogue - 1]) + 1 if spec.n_catalogue > 0 else 0
    stars = {key: v[:last] for key, v in stars.items()}
    gr, measured, snr, det, x, y = (stars[key] for key in ("gr", "measured", "snr", "det", "x", "y"))
    mags = {b[2:]: v for b, v in stars.items() if b.startswith("m_")}

    # target
    t_gr: float | None = None
    t_mags: dict[str, float] | None = None
    t_row: tuple[float, float, bool] | None = None
    if spec.target_snr is not None:
        t_gr = float(np.clip(rng.normal(GR_MEAN_MAG, GR_SIGMA_MAG), *GR_RANGE_MAG))
        tm = _star_mags(rng, np.zeros(1), np.array([t_gr]))
        c_t = float(_natural_colour(spec.band, tm)[0])
        x_t = spec.depth_mag - 2.5 * math.log10(float(_flux_for_snr(spec.target_snr, f_eq)))
        m_obs = x_t - k * c_t
        t_mags = {b: float(v[0] - tm[spec.band][0] + m_obs) for b, v in tm.items()}
        t_meas_a, t_snr_a, t_det_a = _observe(rng, np.array([x_t]), spec, f_eq)
        t_row = (float(t_meas_a[0]), float(t_snr_a[0]), bool(t_det_a[0]))

    # the catalogue: detected field stars, then the target, then junk rows
    idx = np.flatnonzero(det)
    inst = spec.depth_mag - 2.5 * np.log10(measured[idx]) + spec.zeropoint_mag
    inst += rng.normal(0.0, spec.intrinsic_scatter_mag, idx.size)
    err = 2.5 / math.log(10.0) / snr[idx]
    n_out = int(round(spec.outlier_fraction * idx.size))
    out = rng.choice(idx.size, size=n_out, replace=False) if n_out else np.zeros(0, dtype=int)
    blend = rng.random(n_out) < 0.7
    shift = np.where(blend, -rng.uniform(0.1, 2.0, n_out),
                     rng.choice([-1.0, 1.0], n_out) * rng.uniform(0.2, 2.0, n_out))
    inst[out] += shift
    # the quoted error follows the flux actually measured (a blend is brighter, so its error smaller)
    f_out = measured[idx][out] * 10 ** (-0.4 * shift)
    err[out] = 2.5 / math.log(10.0) * _BG_SIGMA * np.sqrt(1.0 + f_out / f_eq) / f_out
    pos_sig = np.hypot(spec.jitter_arcsec, spec.fwhm_arcsec / (2.35 * np.maximum(snr[idx], 1.0)))
    cx = x[idx] + spec.offset_arcsec[0] + rng.normal(0.0, 1.0, idx.size) * pos_sig
    cy = y[idx] + spec.offset_arcsec[1] + rng.normal(0.0, 1.0, idx.size) * pos_sig
    rows_x, rows_y, rows_m, rows_e = [cx], [cy], [inst], [err]
    detected = bool(t_row is not None and t_row[2])
    if t_row is not None and detected:
        t_meas, t_snr, _ = t_row
        t_inst = spec.depth_mag - 2.5 * math.log10(t_meas) + spec.zeropoint_mag
        t_inst += float(rng.normal(0.0, spec.intrinsic_scatter_mag))
        t_sig = math.hypot(spec.jitter_arcsec, spec.fwhm_arcsec / (2.35 * max(t_snr, 1.0)))
        rows_x.append(np.array([spec.offset_arcsec[0] + rng.normal(0.0, t_sig)]))
        rows_y.append(np.array([spec.offset_arcsec[1] + rng.normal(0.0, t_sig)]))
        rows_m.append(np.array([t_inst]))
        rows_e.append(np.array([2.5 / math.log(10.0) / t_snr]))
    if spec.n_junk_rows:
        j = spec.n_junk_rows
        rows_x.append(rng.uniform(-300, 300, j))
        rows_y.append(rng.uniform(-300, 300, j))
        rows_m.append(np.where(rng.random(j) < 0.5, 99.0, 78.0 + 60000.0))
        rows_e.append(np.where(rng.random(j) < 0.5, 0.0, 60000.0))
    cat_x, cat_y = np.concatenate(rows_x), np.concatenate(rows_y)
    order = rng.permutation(cat_x.size)
    cat_x, cat_y = cat_x[order], cat_y[order]
    cat_m, cat_e = np.concatenate(rows_m)[order], np.concatenate(rows_e)[order]
    header: dict[str, object] = (
        {"FILTER": spec.declared_filter} if spec.declared_filter and spec.declared_in_header else {})
    table = StarTable(spec.ra_deg + cat_x * _AS / cos_d, spec.dec_deg + cat_y * _AS, cat_m, cat_e,
                      "SIMULATED", "MAG", int(cat_x.size), {}, header)

    # references
    references = []
    in_apass = (mags["r"] < spec.apass_depth_mag) & (mags["r"] > 10.0)
    ref_extra = {}
    if t_mags is not None and spec.target_known:
        ref_extra = {b: t_mags[b] + 0.7 for b in t_mags}
    a_idx = np.flatnonzero(in_apass)
    a_x = x[a_idx] + rng.normal(0.0, spec.apass_jitter_arcsec, a_idx.size)
    a_y = y[a_idx] + rng.normal(0.0, spec.apass_jitter_arcsec, a_idx.size)
    a_mags, a_errs = {}, {}
    for b, factor in (("B", 1.5), ("V", 1.0), ("g", 1.1), ("r", 1.0), ("i", 1.2)):
        true_b = mags[b][a_idx]
        if ref_extra and ref_extra["r"] < spec.apass_depth_mag:
            true_b = np.append(true_b, ref_extra[b])
        e_b = factor * np.hypot(0.015, 0.03 * 10 ** (0.4 * (true_b - 16.5)))
        obs = true_b + rng.normal(0.0, 1.0, true_b.size) * e_b
        missing = rng.random(true_b.size) < (0.03 if b in ("B", "i") else 0.0)
        a_mags[b], a_errs[b] = np.where(missing, np.nan, obs), np.where(missing, np.nan, e_b)
    if ref_extra and ref_extra["r"] < spec.apass_depth_mag:
        a_x, a_y = np.append(a_x, rng.normal(0.0, spec.apass_jitter_arcsec)), np.append(
            a_y, rng.normal(0.0, spec.apass_jitter_arcsec))
    references.append(ReferenceStars("APASS", "SIM-DR9", spec.ra_deg + a_x * _AS / cos_d, spec.dec_deg + a_y * _AS,
                                     a_mags, a_errs))
    if spec.with_gaia:
        in_gaia = mags["G"] < 20.7
        g_idx = np.flatnonzero(in_gaia)
        g_x = x[g_idx] + rng.normal(0.0, 0.002, g_idx.size)
        g_y = y[g_idx] + rng.normal(0.0, 0.002, g_idx.size)
        g_mags, g_errs = {}, {}
        for b, e0, e1 in (("G", 0.001, 0.01), ("BP", 0.004, 0.08), ("RP", 0.004, 0.06)):
            true_b = mags[b][g_idx]
            if ref_extra and ref_extra["G"] < 20.7:
                true_b = np.append(true_b, ref_extra[b])
            e_b = np.hypot(e0, e1 * 10 ** (0.4 * (true_b - 19.0)))
            g_mags[b] = true_b + rng.normal(0.0, 1.0, true_b.size) * e_b
            g_errs[b] = e_b
        if ref_extra and ref_extra["G"] < 20.7:
            g_x, g_y = np.append(g_x, 0.0), np.append(g_y, 0.0)
        references.append(ReferenceStars("GaiaDR3", "SIM-DR3", spec.ra_deg + g_x * _AS / cos_d,
                                         spec.dec_deg + g_y * _AS, g_mags, g_errs))

    # truth
    med_gr = float(np.median(gr[a_idx])) if a_idx.size else float(np.median(gr))
    med_off = band_offsets(med_gr)
    blue, red = NATURAL_COLOUR[spec.band]
    med_colour = float(med_off[blue] - med_off[red])
    if t_gr is not None:
        t_off = band_offsets(t_gr)
        c_depth = float(t_off[blue] - t_off[red])
    else:
        c_depth = med_colour
    x5 = spec.depth_mag - 2.5 * math.log10(float(_flux_for_snr(max(limit_sigma, spec.cut_snr), f_eq)))
    truth = SimulationTruth(
        band=spec.band, colour_name=f"{blue}-{red}", zeropoint_mag=spec.zeropoint_mag, colour_term=k,
        intrinsic_scatter_mag=spec.intrinsic_scatter_mag, median_gr_mag=med_gr, median_colour_mag=med_colour,
        zeropoint_at_median_mag=spec.zeropoint_mag + k * med_colour, target_present=spec.target_snr is not None,
        target_detected=detected, target_known=bool(spec.target_known and t_mags is not None),
        target_snr=spec.target_snr, target_gr_mag=t_gr, target_mags=t_mags, depth_mag=float(x5 - k * c_depth),
        limit_sigma=float(limit_sigma), cut_snr=float(spec.cut_snr), jitter_arcsec=spec.jitter_arcsec,
        offset_arcsec=(spec.offset_arcsec[0], spec.offset_arcsec[1]),
        n_outliers=n_out, n_catalogue=int(cat_x.size), declared_filter=spec.declared_filter)
    decl_arg = spec.declared_filter if (spec.declared_filter and not spec.declared_in_header) else None
    return SimulatedField(table, references, spec.ra_deg, spec.dec_deg, decl_arg, truth)
