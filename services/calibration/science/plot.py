"""A diagnostic PNG for every calibration, successful or not (object-oriented matplotlib, Agg)."""
from __future__ import annotations

import io
import textwrap
from collections.abc import Iterable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray

from services.calibration.science.calibrate import CalibrationResult
from services.calibration.science.result import MatchedStars

__all__ = ["render_calibration_plot"]

_GOOD = "#1f77b4"
_OUT = "#d62728"
_CHOSEN = "#ff7f0e"
_FAILED = "#b0b0b0"


def _y_limits(diff: NDArray[np.float64], err: NDArray[np.float64], inlier: NDArray[np.bool_], zp: float | None,
              half_width: float) -> tuple[float, float]:
    """Y range: the inliers (with their error bars) and ZP +- half_width; outliers may fall outside."""
    core = diff[inlier] if inlier.any() else diff
    core_err = err[inlier] if inlier.any() else err
    if zp is None and core.size == 0:
        return -1.0, 1.0
    lo_c: list[float] = []
    hi_c: list[float] = []
    if core.size:
        lo_c.append(float(np.percentile(core - core_err, 1)))
        hi_c.append(float(np.percentile(core + core_err, 99)))
    if zp is not None:
        lo_c.append(zp - half_width)
        hi_c.append(zp + half_width)
    lo, hi = min(lo_c), max(hi_c)
    pad = max(0.08 * (hi - lo), 0.02)
    return lo - pad, hi + pad


def _floats(values: Iterable[float | None]) -> NDArray[np.float64]:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _colour_correction(result: CalibrationResult) -> NDArray[np.float64] | None:
    """``k (c - c_target)`` per matched star when a colour term is used (None otherwise)."""
    m = result.matched
    if m is None or result.colour_slope is None or result.target_colour is None or not m.colour:
        return None
    c = _floats(m.colour)
    return np.where(np.isfinite(c), result.colour_slope * (c - result.target_colour), 0.0)


def _left_panel(ax: Axes, result: CalibrationResult) -> None:
    m = result.matched
    ref = _floats(m.ref_mag if m else [])
    inst = _floats(m.inst_mag if m else [])
    err = _floats(m.err_mag if m else [])
    out = np.asarray(m.outlier if m else [], dtype=bool)
    diff = inst - ref
    corr = _colour_correction(result)
    if corr is not None:  # every star brought to the target's colour, where `zeropoint` applies
        diff = diff - corr
    label = f"{m.survey}/{m.band}" if m else "reference"
    zp = result.zeropoint
    scatter = result.scatter
    if zp is None and m is not None:  # a failure: show the best attempt's fit, if any
        for f in result.fits:
            if (f.survey, f.band) == (m.survey, m.band):
                zp, scatter = f.zeropoint, f.scatter
    half = 0.3
    if scatter is not None and err.size:
        half = max(0.1, 4.0 * float(np.hypot(scatter, np.median(err))))
    lo, hi = _y_limits(diff, err, ~out, zp, half)
    if zp is not None:
        if scatter is not None:
            ax.axhspan(zp - scatter, zp + scatter, color=_CHOSEN, alpha=0.18, lw=0, label=f"±scatter {scatter:.3f}")
        ax.axhline(zp, color=_CHOSEN, lw=1.5, label=f"ZP {zp:.3f}")
    if ref.size:
        ax.set_xlim(float(ref.min()) - 0.3, float(ref.max()) + 0.3)
        good = ~out
        if good.any():
            ax.errorbar(ref[good], diff[good], yerr=err[good], fmt="o", ms=3, lw=0.6, color=_GOOD,
                        ecolor=_GOOD, alpha=0.8, label=f"used ({int(good.sum())})")
        if out.any():
            d_out = diff[out]
            inside = (d_out > lo) & (d_out < hi)
            ax.errorbar(ref[out][inside], d_out[inside], yerr=err[out][inside], fmt="x", ms=4, lw=0.6,
                        color=_OUT, ecolor=_OUT, alpha=0.8, label=f"outliers ({int(out.sum())})")
            margin = 0.03 * (hi - lo)
            above, below = d_out >= hi, d_out <= lo
            if above.any():
                ax.plot(ref[out][above], np.full(above.sum(), hi - margin), "^", ms=4, color=_OUT, alpha=0.8)
            if below.any():
                ax.plot(ref[out][below], np.full(below.sum(), lo + margin), "v", ms=4, color=_OUT, alpha=0.8)
        ax.legend(loc="best", fontsize=7, framealpha=0.7)
    else:
        ax.text(0.5, 0.5, "no matched stars", ha="center", va="center", transform=ax.transAxes, fontsize=11,
                color="0.4")
    ax.set_ylim(lo, hi)
    ax.set_xlabel(f"{label} reference mag")
    ax.set_ylabel("m_inst - m_ref [mag]" + (" at the target's colour" if corr is not None else ""), fontsize=8)
    ax.grid(alpha=0.3)


def _colour_panel(ax: Axes, result: CalibrationResult) -> None:
    """m_inst - m_ref against the reference colour, with the colour term if one is used."""
    m = result.matched
    colour = _floats(m.colour) if m is not None and m.colour else np.zeros(0)
    if m is None or colour.size == 0 or not np.isfinite(colour).any():
        ax.text(0.5, 0.5, "no reference colour", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set_axis_off()
        return
    diff = _floats(m.inst_mag) - _floats(m.ref_mag)
    out = np.asarray(m.outlier, dtype=bool)
    ok = np.isfinite(colour)
    ax.plot(colour[ok & ~out], diff[ok & ~out], "o", ms=3, color=_GOOD, alpha=0.8)
    core = diff[ok & ~out] if (ok & ~out).any() else diff[ok]
    lo, hi = float(np.percentile(core, 1)), float(np.percentile(core, 99))
    pad = max(0.15 * (hi - lo), 0.05)
    ax.set_ylim(lo - pad, hi + pad)
    inside = ok & out & (diff > lo - pad) & (diff < hi + pad)
    ax.plot(colour[inside], diff[inside], "x", ms=4, color=_OUT, alpha=0.8)
    xs = np.linspace(float(np.nanmin(colour)), float(np.nanmax(colour)), 20)
    fit = next((f for f in result.fits if (f.survey, f.band) == (m.survey, m.band)), None)
    title = "no colour term"
    if (result.colour_slope is not None and result.colour_pivot_mag is not None and fit is not None
            and fit.zeropoint is not None):
        ax.plot(xs, fit.zeropoint + result.colour_slope * (xs - result.colour_pivot_mag), color=_CHOSEN, lw=1.5)
        title = f"k = {result.colour_slope:+.3f} ± {result.colour_slope_err or 0:.3f}"
        if result.target_colour is not None:
            ax.axvline(result.target_colour, color="0.3", lw=0.8, ls="--")
            title += f"; target {result.target_colour:.2f} ({result.target_colour_source})"
    elif fit is not None and fit.zeropoint is not None:
        ax.axhline(fit.zeropoint, color=_CHOSEN, lw=1.2)
        if fit.colour_note:
            title = fit.colour_note
    ax.set_title(title, fontsize=7)
    ax.set_xlabel(f"{fit.colour if fit is not None and fit.colour else 'colour'} [mag]", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _right_panel(ax: Axes, result: CalibrationResult) -> None:
    fits = list(result.fits)
    if not fits:
        ax.text(0.5, 0.5, "no survey/band fitted", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set_axis_off()
        return
    names = [f"{f.survey}/{f.band}" for f in fits]
    vals = [f.scatter if f.scatter is not None else 0.0 for f in fits]
    colors = []
    for f, name in zip(fits, names, strict=True):
        if result.filter is not None and name == result.filter:
            colors.append(_CHOSEN)
        elif f.passed:
            colors.append(_GOOD)
        else:
            colors.append(_FAILED)
    y = np.arange(len(fits))
    ax.barh(y, vals, color=colors, height=0.7)
    vmax = max(max(vals), 0.05)
    for yi, f in enumerate(fits):
        txt = f"n={f.npoints}" if f.scatter is not None else f"n={f.npoints}, no fit"
        if f.scatter is not None and not f.passed:
            txt += ", failed"
        ax.text(min(vals[yi], vmax * 1.15) + vmax * 0.02, yi, txt, va="center", fontsize=6.5)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, vmax * 1.5)
    ax.set_xlabel("scatter [mag]")
    ax.set_title("per band (orange: chosen, grey: failed)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


#: At most this many per-band panels in a row of the per-band plot.
_BANDS_PER_ROW = 6


def _band_panel(ax: Axes, result: CalibrationResult, stars: MatchedStars) -> None:
    """One survey/band tried: m_inst - m_ref of its matched stars and its fitted zero point; the chosen
    band is framed in orange and says so."""
    name = f"{stars.survey}/{stars.band}"
    chosen = result.filter is not None and name == result.filter
    fit = next((f for f in result.fits if (f.survey, f.band) == (stars.survey, stars.band)), None)
    ref, inst, err = _floats(stars.ref_mag), _floats(stars.inst_mag), _floats(stars.err_mag)
    out = np.asarray(stars.outlier, dtype=bool) if len(stars.outlier) == ref.size else np.zeros(ref.size, bool)
    diff = inst - ref
    ok = np.isfinite(diff) & np.isfinite(ref)
    zp = fit.constant_zeropoint if fit is not None and fit.constant_zeropoint is not None else \
        (fit.zeropoint if fit is not None else None)
    if ok.any():
        ax.plot(ref[ok & ~out], diff[ok & ~out], "o", ms=2.5, color=_GOOD, alpha=0.8)
        ax.plot(ref[ok & out], diff[ok & out], "x", ms=3, color=_OUT, alpha=0.8)
        half = 0.3 if fit is None or fit.scatter is None else max(0.1, 4.0 * fit.scatter)
        lo, hi = _y_limits(diff[ok], np.nan_to_num(err[ok]), ~out[ok], zp, half)
        ax.set_ylim(lo, hi)
    else:
        ax.text(0.5, 0.5, "no matched stars", ha="center", va="center", transform=ax.transAxes, color="0.4",
                fontsize=7)
    if zp is not None:
        ax.axhline(zp, color=_CHOSEN if chosen else "0.35", lw=1.2)
    verdict = "chosen" if chosen else ("passed" if fit is not None and fit.passed else "failed")
    detail = f"n={fit.npoints}" if fit is not None else f"n={int(ok.sum())}"
    if fit is not None and fit.scatter is not None:
        detail += f", σ={fit.scatter:.3f}"
    ax.set_title(f"{name} ({verdict})\n{detail}", fontsize=7, color=_CHOSEN if chosen else
                 ("black" if verdict == "passed" else "0.45"), weight="bold" if chosen else "normal")
    for spine in ax.spines.values():
        spine.set_edgecolor(_CHOSEN if chosen else "0.6")
        spine.set_linewidth(2.5 if chosen else 0.8)
    ax.locator_params(nbins=4)
    ax.tick_params(labelsize=6)
    ax.grid(alpha=0.3)


def _headline(result: CalibrationResult) -> tuple[str, str]:
    if result.status == "calibrated":
        return (f"{result.filter} ({result.mode}): mag {result.mag:.3f} ± {result.total_err:.3f}  "
                f"(ZP {result.zeropoint:.3f} ± {result.zeropoint_err:.3f}, n={result.npoints}; "
                f"radius {result.match_radius_arcsec:.2f}\" {result.match_radius_method})", "black")
    if result.status == "limit":
        return (f"{result.filter} ({result.mode}): > {result.mag:.3f} ({result.limit_sigma:g} sigma limit; "
                f"{result.limit_method})", "#8c564b")
    return "FAILED: " + (result.reason or "calibration failed"), _OUT


def render_calibration_plot(result: CalibrationResult, *, title: str = "", dpi: int = 80,
                            per_band: bool = False) -> bytes:
    """Render the calibration diagnostic as PNG bytes.

    Left: reference magnitude against ``m_inst - m_ref`` (brought to the target's colour when a
    colour term is used) with error bars, outliers in red, the zero point and a ±scatter band.
    Middle: ``m_inst - m_ref`` against the reference colour with the colour term and the target's
    colour. Right: the scatter of every survey/band fitted (chosen band in orange, failed in grey).
    A failed calibration shows its reason and whatever stars matched; zero matched stars give a
    labelled empty panel.

    Parameters
    ----------
    result : CalibrationResult
        The outcome of :func:`~services.calibration.science.calibrate.calibrate`.
    title : str, optional
        A first title line (e.g. event and observatory).
    dpi : int, optional
        Resolution; the figure is 12 x 4 inches (plus 2.6 inches per row of per-band panels).
    per_band : bool, optional
        Add a row of small panels, one per survey/band tried (``band_matches``), the chosen one framed
        in orange.

    Returns
    -------
    bytes
        A PNG image.
    """
    bands = list(result.band_matches) if per_band else []
    rows = -(-len(bands) // _BANDS_PER_ROW)
    height = 4.0 + 2.6 * rows
    fig = Figure(figsize=(12, height), dpi=dpi)
    FigureCanvasAgg(fig)
    main_bottom = 1.0 - 4.0 / height  # the first 4 inches hold the panels drawn without per-band rows
    grid = fig.add_gridspec(1, 3, width_ratios=(1.6, 1.0, 1.0), left=0.07, right=0.98,
                            bottom=main_bottom + 0.13 * 4.0 / height, top=1.0 - 0.2 * 4.0 / height, wspace=0.4)
    if bands:
        band_grid = fig.add_gridspec(rows, _BANDS_PER_ROW, left=0.05, right=0.98, bottom=0.35 / height,
                                     top=main_bottom - 0.25 / height, wspace=0.35, hspace=0.75)
        for i, stars in enumerate(bands):
            _band_panel(fig.add_subplot(band_grid[i // _BANDS_PER_ROW, i % _BANDS_PER_ROW]), result, stars)
    _left_panel(fig.add_subplot(grid[0, 0]), result)
    _colour_panel(fig.add_subplot(grid[0, 1]), result)
    _right_panel(fig.add_subplot(grid[0, 2]), result)
    headline, colour = _headline(result)
    lines = textwrap.wrap(headline, 120)[:3]
    top = 1.0 - 0.02 * 4.0 / height
    if title:
        fig.text(0.5, top, title, ha="center", va="top", fontsize=10, weight="bold")
        top -= 0.07 * 4.0 / height
    fig.text(0.5, top, "\n".join(lines), ha="center", va="top", fontsize=8.5, color=colour)
    fig.text(0.995, 0.005, f"algorithm {result.algorithm_version} · params {result.params_hash}",
             ha="right", va="bottom", fontsize=6, color="0.5")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
