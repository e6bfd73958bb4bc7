"""Photometry of a frame with a solved WCS: every star, and forced photometry at the event position.

Steps (pure and synchronous; photutils throughout):

1. background and RMS maps, detection, windowed centroids (:mod:`shared.fitsimage.sources`);
2. flags: saturated (peak at 90 % of the saturation level from the header, the observatory record
   or the frame's own plateau), cosmic ray (a peak too sharp for the PSF), blended (a neighbour
   within 2 FWHM), edge (aperture off the frame or on missing pixels); after the PSF fit, poor fit
   (a reduced chi-square above twice that of stars of similar S/N: an unresolved pair, whose one
   PSF flux is too bright by up to half a magnitude);
3. the PSF: a Moffat fitted by photutils on bright isolated stars (:mod:`.psf`);
4. PSF fluxes of all stars **and of the event position** in one simultaneous linear fit with
   positions fixed; aperture fluxes (1.5 FWHM) with an aperture correction to 4 FWHM measured on
   the ``aperture_correction_stars`` (100) brightest isolated stars (on the simulated 2k frames
   their median leaves the aperture magnitudes 0.0018 mag from the truth; all 700 isolated stars
   left 0.0041 mag, the faint ones' noisy ratios pulling the median, and took 0.07 s);
5. the catalogue for the calibration (:class:`~shared.catalogue.model.StarTable`, same schema as an
   upload): stars not flagged saturated, edge, cosmic or poor fit (poor fits are kept when leaving
   them out would leave fewer than half the stars or 10: then the PSF model is to blame) with
   ``mag = -2.5 log10(flux / exptime)``,
   no other row near the event, and the event's row only when detected at ``limit_sigma``;
   otherwise an ``limit_sigma`` limit from the local background noise at the event;
6. image metadata: FWHM, background, 5-sigma limiting magnitude, airmass...

The PSF flux is the catalogue magnitude (``MAG_PSF``) unless the PSF is undersampled (FWHM below
1.5 pixels) or ``params.method == "aperture"``: then the aperture-corrected flux (``MAG_APER``).
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Any, cast

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS
from numpy.typing import NDArray
from photutils.aperture import CircularAperture, aperture_photometry
from scipy.spatial import cKDTree

from services.photometry.science.model import (
    DEFAULT_PARAMS,
    FLAGS,
    ForcedPhotometry,
    PhotometryParams,
    PhotometryResult,
)
from services.photometry.science.psf import fit_fluxes, fit_psf_model, stamp_grid
from shared.catalogue.model import StarTable
from shared.fitsimage.header import standardise_header
from shared.fitsimage.model import ImageFrame, ObservationHeader
from shared.fitsimage.sources import estimate_background, find_sources

__all__ = ["measure"]

_MAG_ERR = 2.5 / math.log(10.0)


def _plateau_saturation(data: np.ndarray) -> float | None:
    """The frame's maximum when at least 20 pixels share it (a clipped, saturated level), else None."""
    finite = data[np.isfinite(data)]
    top = float(finite.max())
    return top if int(np.count_nonzero(finite >= top)) >= 20 else None


def _local_max(data: np.ndarray, x: np.ndarray, y: np.ndarray, half: int = 1) -> np.ndarray:
    ny, nx = data.shape
    gx, gy = stamp_grid(x, y, half)
    inside = (gx >= 0) & (gx < nx) & (gy >= 0) & (gy < ny)
    vals = np.where(inside, data[np.clip(gy, 0, ny - 1), np.clip(gx, 0, nx - 1)], -np.inf)
    peak: np.ndarray = np.nanmax(np.where(np.isfinite(vals), vals, -np.inf), axis=(1, 2))
    return peak


def _aperture(sub: np.ndarray, rms: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float,
              gain: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flux, error, touches-missing-or-edge) in circular apertures."""
    ny, nx = sub.shape
    bad = ~np.isfinite(sub)
    any_bad = bool(bad.any())
    aper = CircularAperture(np.c_[x, y], r=radius)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        table = aperture_photometry(np.where(bad, 0.0, sub) if any_bad else sub, aper, mask=bad if any_bad else None)
    flux = np.asarray(table["aperture_sum"], float)
    area = math.pi * radius**2
    r_local = rms[np.clip(np.rint(y).astype(int), 0, ny - 1), np.clip(np.rint(x).astype(int), 0, nx - 1)]
    var = area * r_local.astype(float) ** 2 + (np.maximum(flux, 0.0) / gain if gain else 0.0)
    edge = (x - radius < -0.5) | (x + radius > nx - 0.5) | (y - radius < -0.5) | (y + radius > ny - 0.5)
    if any_bad:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            n_bad = np.asarray(aperture_photometry(bad.astype(float), aper)["aperture_sum"], float)
        edge |= n_bad > 0
    return flux, np.sqrt(var), edge


def _mag(flux: NDArray[np.float64], err: NDArray[np.float64],
         exptime: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    with np.errstate(invalid="ignore", divide="ignore"):
        mag = np.where(flux > 0, -2.5 * np.log10(np.where(flux > 0, flux, 1.0) / exptime), np.nan)
        mag_err = np.where(flux > 0, _MAG_ERR * err / np.where(flux > 0, flux, 1.0), np.nan)
    return mag, mag_err


def _poor_fit(chi2: np.ndarray, snr: np.ndarray, ratio: float, group: int = 20) -> np.ndarray:
    """Stars whose PSF fit is much worse than that of stars of similar S/N (unresolved blends).

    The reference is the median reduced chi-square of groups of at least ``group`` stars ranked by
    S/N (bright stars fit worse when the PSF model is imperfect, so one threshold for all would
    reject the bright calibrators of real frames); flagged: above ``ratio`` times it and above 1.5.
    """
    out = np.zeros(chi2.size, bool)
    good = np.flatnonzero(np.isfinite(chi2) & np.isfinite(snr))
    if good.size < 10:
        return out
    order = good[np.argsort(snr[good], kind="stable")]
    ref = np.empty(chi2.size)
    for chunk in np.array_split(order, max(1, order.size // group)):  # groups of at least ``group`` stars
        ref[chunk] = np.median(chi2[chunk])
    out[good] = chi2[good] > np.maximum(ratio * ref[good], 1.5)
    return out


def _failed(reason: str, **kw: Any) -> PhotometryResult:
    return PhotometryResult(status="failed", reason=reason, stars=None, target=None, sources=None, **kw)


def measure(frame: ImageFrame | np.ndarray, wcs: WCS, *, target_ra_deg: float, target_dec_deg: float,
            record: ObservationHeader | None = None, exptime_s: float | None = None, gain: float | None = None,
            saturation_adu: float | None = None, params: PhotometryParams = DEFAULT_PARAMS) -> PhotometryResult:
    """Measure all stars of a frame and the event position.

    Parameters
    ----------
    frame : ImageFrame or numpy.ndarray
        The image.
    wcs : astropy.wcs.WCS
        Its solved WCS (from the astrometry service).
    target_ra_deg, target_dec_deg : float
        The event position.
    record : ObservationHeader, optional
        Standardised header (default: from ``frame.header``); gives exposure, gain, saturation, airmass.
    exptime_s, gain, saturation_adu : float, optional
        Override the record (seconds; e-/ADU; ADU).
    params : PhotometryParams, optional

    Returns
    -------
    PhotometryResult
        ``status == "failed"`` with a reason when there is nothing to measure; never raises for bad data.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    notes: list[str] = []
    p = params.to_dict()
    data = frame.data if isinstance(frame, ImageFrame) else np.asarray(frame, dtype=np.float32)
    if record is None and isinstance(frame, ImageFrame):
        record = standardise_header(frame.header)
    ny, nx = data.shape
    exptime = exptime_s or (record.exptime_s if record else None)
    exptime_source = "argument" if exptime_s else ("header" if exptime else "assumed 1 s")
    if not exptime:
        exptime = 1.0
        notes.append("no exposure time: fluxes are per frame (1 s assumed)")
    gain = gain or (record.gain_e_per_adu if record else None)
    if not gain:
        notes.append("no gain: flux errors count the background noise only")
    sat = saturation_adu or (record.saturation_adu if record else None)
    if sat is None:
        sat = _plateau_saturation(data)
        notes.append("saturation level from the frame's plateau" if sat else "no saturation level known")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scale = float(math.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600.0)
    fwhm_guess = float(np.clip(1.5 / scale, 2.0, 8.0)) if scale > 0 else 3.0

    bkg = estimate_background(data)
    sub = data - bkg.level
    timings["background"] = time.perf_counter() - t0
    t = time.perf_counter()
    sources, _ = find_sources(data, background=bkg, threshold_sigma=params.detection_sigma, n_pixels=params.n_pixels,
                              kernel_fwhm_px=fwhm_guess)
    bright = sources.fwhm_px[:50][np.isfinite(sources.fwhm_px[:50])]
    if bright.size >= 3 and not 0.5 < 0.75 * np.median(bright) / fwhm_guess < 2.0:
        fwhm_guess = float(np.clip(0.75 * np.median(bright), 1.5, 20.0))  # seeing far from the guess: again
        sources, _ = find_sources(data, background=bkg, threshold_sigma=params.detection_sigma,
                                  n_pixels=params.n_pixels, kernel_fwhm_px=fwhm_guess)
    timings["detect"] = time.perf_counter() - t
    base = dict(notes=tuple(notes), params=p)
    if len(sources) < 3:
        return _failed(f"only {len(sources)} sources detected: nothing to calibrate against", timings_s=timings, **base)

    t = time.perf_counter()
    x, y = sources.x.astype(float), sources.y.astype(float)
    raw_peak = _local_max(data, x, y)
    saturated = raw_peak >= params.saturation_fraction * sat if sat else np.zeros(x.size, bool)
    tree = cKDTree(np.c_[x, y])
    d_nn = cast(NDArray[np.float64], tree.query(np.c_[x, y], k=2)[0])[:, 1] if x.size > 1 else np.full(x.size, np.inf)
    fwhm_m = sources.fwhm_px
    snr_seg = sources.flux / np.sqrt(np.maximum(sources.area_px, 1.0) * bkg.median_rms_adu**2)
    ref_m = np.nanmedian(fwhm_m[(~saturated) & (snr_seg > 20)]) if np.any((~saturated) & (snr_seg > 20)) else \
        np.nanmedian(fwhm_m)
    guess = float(np.clip(0.75 * ref_m if np.isfinite(ref_m) else fwhm_guess, 1.0, 20.0))
    margin = 3.0 * guess
    inner = (x > margin) & (x < nx - 1 - margin) & (y > margin) & (y < ny - 1 - margin) & (fwhm_m > 0.6 * ref_m)
    candidates = np.flatnonzero((~saturated) & (d_nn > 4.0 * guess) & (snr_seg > 30) & inner)
    if candidates.size < 5:  # sparse or shallow frames: accept fainter, closer stars
        candidates = np.flatnonzero((~saturated) & (d_nn > 3.0 * guess) & (snr_seg > 10) & inner)
    psf, psf_note = fit_psf_model(sub, x[candidates], y[candidates], sources.flux[candidates], fwhm_guess_px=guess,
                                  max_stars=params.max_psf_stars)
    if psf_note:
        notes.append(psf_note)
    fwhm = psf.fwhm_px
    timings["psf_model"] = time.perf_counter() - t

    t = time.perf_counter()
    half = int(np.clip(math.ceil(params.stamp_fwhm * fwhm), 2, 15))
    p_max = float(psf.evaluate(np.array(0.0), np.array(0.0)))
    # a cosmic ray is sharper than any star can be (not judged on undersampled frames)
    cosmic = (sources.peak > max(2.5 * p_max, 0.3) * sources.flux) & ~saturated & (fwhm >= 1.5)
    blended = (d_nn < params.blend_fwhm * fwhm) | (fwhm_m > 2.0 * ref_m)  # a close pair, or merged into one segment
    # the event: fitted at its WCS position; detections on it are the event itself
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            tx, ty = (float(v) for v in wcs.all_world2pix([[target_ra_deg, target_dec_deg]], 0, quiet=True)[0])
        except Exception:  # far outside a distorted frame: the linear part says where
            tx, ty = (float(v) for v in wcs.wcs_world2pix([[target_ra_deg, target_dec_deg]], 0)[0])
    in_frame = bool(np.isfinite(tx) and np.isfinite(ty) and -0.5 <= tx <= nx - 0.5 and -0.5 <= ty <= ny - 0.5)
    d_target = np.hypot(x - tx, y - ty) if in_frame else np.full(x.size, np.inf)
    on_target = d_target < max(1.0, fwhm)
    fit_idx = np.flatnonzero(~on_target & ~cosmic)
    fx = np.concatenate([x[fit_idx], [tx] if in_frame else []])
    fy = np.concatenate([y[fit_idx], [ty] if in_frame else []])
    f_fit, e_fit, eb_fit, rejected, chi2_fit = fit_fluxes(sub, bkg.rms, fx, fy, psf, gain=gain, half=half,
                                                          return_chi2=True)
    if rejected.size:  # cosmic rays and hot pixels found by the PSF fit: set to the background for the apertures
        sub = sub.copy()
        sub.ravel()[rejected] = 0.0
    flux_psf = np.full(x.size, np.nan)
    err_psf = np.full(x.size, np.nan)
    flux_psf[fit_idx], err_psf[fit_idx] = f_fit[:fit_idx.size], e_fit[:fit_idx.size]
    chi2 = np.full(x.size, np.nan)
    chi2[fit_idx] = chi2_fit[:fit_idx.size]
    poor_fit = _poor_fit(chi2, flux_psf / err_psf, params.poor_fit_chi2_ratio)
    timings["psf_photometry"] = time.perf_counter() - t

    t = time.perf_counter()
    r_ap = max(1.5, params.aperture_fwhm * fwhm)
    r_big = max(r_ap + 1.0, params.aperture_correction_fwhm * fwhm)
    ax = np.concatenate([x, [tx] if in_frame else []])
    ay = np.concatenate([y, [ty] if in_frame else []])
    f_ap, e_ap, edge_ap = _aperture(sub, bkg.rms, ax, ay, r_ap, gain)
    edge = edge_ap[:x.size]
    corr_sel = np.flatnonzero(~saturated & ~cosmic & ~edge & (d_nn > 2.0 * r_big)
                              & (f_ap[:x.size] > 50 * e_ap[:x.size]))
    # the brightest of them: their ratios are the least noisy, and each big aperture costs (0.07 s for
    # the 400 of a 2k frame)
    corr_sel = corr_sel[np.argsort(-f_ap[corr_sel], kind="stable")[:params.aperture_correction_stars]]
    ap_corr, ap_corr_err = 1.0, None
    if corr_sel.size >= 3:
        f_big, _, edge_big = _aperture(sub, bkg.rms, x[corr_sel], y[corr_sel], r_big, gain)
        ratio = f_big[~edge_big] / f_ap[corr_sel][~edge_big]
        if ratio.size >= 3:
            ap_corr = float(np.median(ratio))
            ap_corr_err = float(1.2533 * np.std(ratio) / math.sqrt(ratio.size))
    else:
        notes.append("too few bright isolated stars for an aperture correction: none applied")
    f_ap_c, e_ap_c = f_ap * ap_corr, e_ap * ap_corr
    timings["aperture"] = time.perf_counter() - t

    method = params.method
    if method == "psf" and fwhm < 1.5:
        method = "aperture"
        notes.append(f"the PSF is undersampled (FWHM {fwhm:.2f} px): aperture magnitudes are used")
    flux_cat = flux_psf if method == "psf" else f_ap_c[:x.size]
    err_cat = err_psf if method == "psf" else e_ap_c[:x.size]
    bad_fit = ~(np.isfinite(flux_cat) & (flux_cat > 0) & np.isfinite(err_cat) & (err_cat > 0))
    flags = (saturated * FLAGS["saturated"] | blended * FLAGS["blended"] | edge * FLAGS["edge"]
             | cosmic * FLAGS["cosmic_ray"] | bad_fit * FLAGS["bad_psf_fit"] | on_target * FLAGS["target"]
             | poor_fit * FLAGS["poor_fit"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ra, dec = wcs.all_pix2world(x, y, 0)
    mag_psf, mag_psf_err = _mag(flux_psf, err_psf, exptime)
    mag_ap, mag_ap_err = _mag(f_ap_c[:x.size], e_ap_c[:x.size], exptime)
    table = Table({"x": x, "y": y, "ra_deg": ra, "dec_deg": dec, "flux_psf": flux_psf, "flux_psf_err": err_psf,
                   "flux_aper": f_ap_c[:x.size], "flux_aper_err": e_ap_c[:x.size], "mag_psf": mag_psf,
                   "mag_psf_err": mag_psf_err, "mag_aper": mag_ap, "mag_aper_err": mag_ap_err, "peak_adu": raw_peak,
                   "fwhm_moments_px": fwhm_m, "psf_chi2": chi2, "flags": flags.astype(np.int32)})

    # the event
    pix_scale = scale if scale > 0 else None
    clear_px = max(params.target_clear_radius_arcsec / pix_scale if pix_scale else 0.0, 2.0 * fwhm)
    if in_frame:
        tf, te, teb = float(f_fit[-1]), float(e_fit[-1]), float(eb_fit[-1])
        if method == "aperture":
            tf, te = float(f_ap_c[-1]), float(e_ap_c[-1])
            rms_t = float(bkg.rms[int(np.clip(round(ty), 0, ny - 1)), int(np.clip(round(tx), 0, nx - 1))])
            teb = math.sqrt(math.pi * r_ap**2) * rms_t * ap_corr
        snr = tf / te if te > 0 else float("nan")
        detected = bool(np.isfinite(snr) and snr >= params.limit_sigma)
        t_mag = -2.5 * math.log10(tf / exptime) if tf > 0 else None
        limit = -2.5 * math.log10(params.limit_sigma * teb / exptime) if teb > 0 else None
        target = ForcedPhotometry(
            ra_deg=float(target_ra_deg), dec_deg=float(target_dec_deg), x_px=tx, y_px=ty, in_frame=True, flux_adu=tf,
            flux_err_adu=te, snr=float(snr), detected=detected, mag_inst=t_mag,
            mag_err=_MAG_ERR * te / tf if tf > 0 else None, limit_sigma=params.limit_sigma, limit_mag_inst=limit,
            aperture_flux_adu=float(f_ap_c[-1]), aperture_flux_err_adu=float(e_ap_c[-1]))
    else:
        target = ForcedPhotometry(
            ra_deg=float(target_ra_deg), dec_deg=float(target_dec_deg), x_px=tx if np.isfinite(tx) else None,
            y_px=ty if np.isfinite(ty) else None, in_frame=False, flux_adu=None, flux_err_adu=None, snr=None,
            detected=False, mag_inst=None, mag_err=None, limit_sigma=params.limit_sigma, limit_mag_inst=None,
            reason="the event position is outside the frame")
        notes.append("the event position is outside the frame")

    # the catalogue for the calibration
    near_target = d_target < clear_px
    usable = ~(saturated | edge | cosmic | bad_fit | near_target)
    drop_poor = poor_fit & usable if method == "psf" else np.zeros(x.size, bool)
    if drop_poor.any() and usable.sum() - drop_poor.sum() < max(10, 0.5 * usable.sum()):
        drop_poor[:] = False  # too many: the PSF model, not blends; keep them all
        notes.append("many stars fit the PSF poorly: none was left out of the catalogue for it")
    usable &= ~drop_poor
    mag_cat, err_cat_mag = (mag_psf, mag_psf_err) if method == "psf" else (mag_ap, mag_ap_err)
    usable &= np.isfinite(mag_cat) & np.isfinite(err_cat_mag) & np.isfinite(ra) & np.isfinite(dec)
    dropped = {reason: int(n) for reason, n in (
        ("saturated", (saturated & ~near_target).sum()), ("edge or missing pixels", (edge & ~saturated).sum()),
        ("cosmic ray", cosmic.sum()), ("no PSF flux" if method == "psf" else "no flux", (bad_fit & ~cosmic).sum()),
        ("near the event", near_target.sum()),
        ("poor PSF fit (unresolved blend)", drop_poor.sum())) if n}
    c_ra, c_dec, c_mag, c_err = ra[usable], dec[usable], mag_cat[usable], err_cat_mag[usable]
    if target.detected and target.mag_inst is not None and target.mag_err is not None:  # both set when detected
        c_ra = np.append(c_ra, target.ra_deg)
        c_dec = np.append(c_dec, target.dec_deg)
        c_mag = np.append(c_mag, target.mag_inst)
        c_err = np.append(c_err, target.mag_err)
    header = {"EXPTIME": exptime, "IMAGE_METHOD": method}
    if record is not None:
        if record.filter or record.filter_raw:
            header["FILTER"] = record.filter or record.filter_raw
        if record.mjd_start is not None:
            header["MJD-OBS"] = record.mjd_start
    stars = StarTable(ra_deg=c_ra.astype(float), dec_deg=c_dec.astype(float), mag=c_mag.astype(float),
                      mag_err=c_err.astype(float), file_format="IMAGE",
                      mag_column="MAG_PSF" if method == "psf" else "MAG_APER", n_input=int(x.size) + int(in_frame),
                      n_dropped=dropped, header=header, exptime_s=float(exptime), exptime_source=exptime_source)

    sum_p2 = psf.sum_p2(half)
    lim5 = -2.5 * math.log10(5.0 * bkg.median_rms_adu / math.sqrt(sum_p2) / exptime)
    metadata = {
        "fwhm_px": fwhm, "fwhm_arcsec": fwhm * pix_scale if pix_scale else None, "psf_model": "moffat",
        "psf_alpha_px": psf.alpha_px, "psf_beta": psf.beta, "psf_stars": psf.n_stars,
        "background_adu": bkg.median_level_adu, "background_rms_adu": bkg.median_rms_adu,
        "limiting_mag_inst_5sigma": lim5, "airmass": record.airmass if record else None, "exptime_s": float(exptime),
        "gain_e_per_adu": gain, "saturation_adu": sat, "pixel_scale_arcsec": pix_scale, "method": method,
        "aperture_radius_px": r_ap, "aperture_correction_mag": -2.5 * math.log10(ap_corr),
        "aperture_correction_err_mag": None if ap_corr_err is None else _MAG_ERR * ap_corr_err / ap_corr,
        "n_detected": int(x.size), "n_catalogue": len(stars), "n_saturated": int(saturated.sum()),
        "n_blended": int(blended.sum()), "target_clear_radius_arcsec": clear_px * pix_scale if pix_scale else None,
        "mjd_mid": record.mjd_mid if record else None,
        "filter": (record.filter or record.filter_raw) if record else None,
    }
    timings["total"] = time.perf_counter() - t0
    return PhotometryResult(status="measured", reason=None, stars=stars, target=target, sources=table,
                            metadata=metadata, notes=tuple(notes), timings_s=timings, params=p)
