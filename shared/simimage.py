"""A seeded simulator of reduced CCD frames of a reference field, with the truth beside the frame.

Pure and deterministic (numpy ``default_rng(seed)``; the only output is FITS bytes and a dict). Used
by tests, benchmarks and the demo (``cpcs simulate``); every frame says ``SYNTHETIC`` in its header.

Model
-----
* **Geometry.** A TAN-SIP WCS centred on ``centre_ra_deg``/``centre_dec_deg`` (default: the middle
  of the reference stars), ``pixel_scale_arcsec``, ``rotation_deg`` (east of north, counter-clockwise)
  and optionally mirrored (``flip``). The SIP part is a cubic radial distortion whose displacement
  at the frame corners is ``sip_strength_px`` pixels (0 = pure TAN).
* **Stars.** Every reference star inside the frame is drawn at its true position with the flux
  ``exptime_s * 10**(-0.4 (m - zeropoint_mag))`` ADU, ``m`` its magnitude in ``band``; ``n_faint``
  extra stars 0.5-2 mag below the faintest reference star (not in the reference, as in real data)
  and an optional transient of ``transient_mag`` at the event position (never in the reference).
* **PSF.** Circular Moffat with FWHM ``seeing_arcsec`` and ``moffat_beta``, sampled at pixel
  centres on a stamp and normalised to unit sum on the stamp (so the drawn flux is exact).
* **Detector.** Flat sky of ``sky_adu`` plus a gentle linear gradient, Poisson noise in electrons
  (``gain`` e-/ADU), Gaussian read noise (``read_noise_e`` electrons), values clipped at
  ``saturation_adu``, then ``n_cosmic`` cosmic-ray hits (1-3 pixel tracks, unclipped energy).
* **Header.** Observation time, exposure, filter, gain, read noise, saturation, pixel scale,
  airmass, pointing (``OBJCTRA``/``OBJCTDEC``, sexagesimal) and a *header* WCS: the true one
  moved by ``wcs_offset_deg`` (TAN only, as a telescope control system writes it; ``None`` = no WCS
  at all). The pointing keywords follow the header WCS (a stale WCS comes from a stale pointing).

The truth dict holds the true WCS header (with SIP), the event and transient, the zero point, the
noise model and the theoretical ``n``-sigma limit of fixed-position PSF photometry at the event
(``limit_instrumental_mag`` at ``limit_sigma``), for a Moffat PSF on a flat background.
"""
from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS, FITSFixedWarning, Sip

from shared.refcat.model import ReferenceStars

__all__ = ["SimulatedImage", "make_reference_field", "moffat_alpha_px", "select_cone", "simulate_image", "true_wcs",
           "wcs_error_vs_truth_arcsec"]

#: Columns accepted as positions when ``reference`` is a table.
_RA_NAMES = ("ra_deg", "ra", "RAJ2000", "RA_ICRS", "RA")
_DEC_NAMES = ("dec_deg", "dec", "DEJ2000", "DE_ICRS", "DEC")
_APASS_BANDS = {"B": "Bmag", "V": "Vmag", "g": "g'mag", "r": "r'mag", "i": "i'mag"}


class SimulatedImage(tuple):
    """``(fits_bytes, truth)``; a tuple so that ``data, truth = simulate_image(...)`` works."""

    __slots__ = ()

    @property
    def fits_bytes(self) -> bytes:
        """The frame as a FITS file."""
        return self[0]

    @property
    def truth(self) -> dict[str, Any]:
        """What a pipeline should recover."""
        return self[1]


def moffat_alpha_px(fwhm_px: float, beta: float) -> float:
    """Core width ``alpha`` of a Moffat profile with the given FWHM (pixels) and ``beta``."""
    return fwhm_px / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def true_wcs(*, centre_ra_deg: float, centre_dec_deg: float, size_px: tuple[int, int], pixel_scale_arcsec: float,
             rotation_deg: float = 0.0, flip: bool = False, sip_strength_px: float = 0.0) -> WCS:
    """The TAN(-SIP) WCS of a simulated frame.

    Parameters
    ----------
    centre_ra_deg, centre_dec_deg : float
        Sky position of the frame centre (the reference pixel).
    size_px : (int, int)
        ``(ny, nx)`` of the frame.
    pixel_scale_arcsec : float
        Pixel scale at the reference pixel.
    rotation_deg : float, optional
        Position angle of the +y axis, east of north.
    flip : bool, optional
        Mirror the x axis (east to the right).
    sip_strength_px : float, optional
        Displacement at the frame corners from the cubic radial SIP distortion, in pixels.

    Returns
    -------
    astropy.wcs.WCS
    """
    ny, nx = size_px
    scale = pixel_scale_arcsec / 3600.0
    th = math.radians(rotation_deg)
    sx = 1.0 if flip else -1.0
    w = WCS(naxis=2)
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    w.wcs.crval = [float(centre_ra_deg) % 360.0, float(centre_dec_deg)]
    w.wcs.cd = scale * np.array([[sx * math.cos(th), math.sin(th)], [-sx * math.sin(th), math.cos(th)]])
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.radesys = "ICRS"
    if sip_strength_px:
        r_corner = math.hypot(nx / 2.0, ny / 2.0)
        k = sip_strength_px / r_corner**3  # dx = k u r^2, dy = k v r^2
        a = np.zeros((4, 4))
        b = np.zeros((4, 4))
        a[3, 0] = a[1, 2] = k
        b[2, 1] = b[0, 3] = k
        w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        w.sip = Sip(a, b, None, None, w.wcs.crpix)
    w.pixel_shape = (nx, ny)
    return w


def _offset_deg(ra0: float, dec0: float, dist_deg: float, pa_deg: float) -> tuple[float, float]:
    """Move from (ra0, dec0) by ``dist_deg`` towards position angle ``pa_deg`` (east of north)."""
    d0, rho, pa = math.radians(dec0), math.radians(dist_deg), math.radians(pa_deg)
    sin_d = math.sin(d0) * math.cos(rho) + math.cos(d0) * math.sin(rho) * math.cos(pa)
    dec = math.asin(max(-1.0, min(1.0, sin_d)))
    dra = math.atan2(math.sin(pa) * math.sin(rho) * math.cos(d0), math.cos(rho) - math.sin(d0) * sin_d)
    return (math.degrees(math.radians(ra0) + dra)) % 360.0, math.degrees(dec)


def _sexagesimal(ra_deg: float, dec_deg: float) -> tuple[str, str]:
    h = (ra_deg % 360.0) / 15.0
    hh, rem = divmod(h * 3600.0, 3600.0)
    mm, ss = divmod(rem, 60.0)
    sign = "-" if dec_deg < 0 else "+"
    d = abs(dec_deg) * 3600.0
    dd, rem = divmod(d, 3600.0)
    dm, ds = divmod(rem, 60.0)
    return f"{int(hh):02d} {int(mm):02d} {ss:05.2f}", f"{sign}{int(dd):02d} {int(dm):02d} {ds:04.1f}"


def _reference_arrays(reference, band: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(reference, ReferenceStars):
        if band not in reference.mags:
            raise ValueError(f"the reference stars have no band {band!r} (bands: {', '.join(reference.mags)})")
        return (np.asarray(reference.ra_deg, float), np.asarray(reference.dec_deg, float),
                np.asarray(reference.mags[band], float))
    table = reference if isinstance(reference, Table) else Table(reference)
    ra_col = next((c for c in _RA_NAMES if c in table.colnames), None)
    dec_col = next((c for c in _DEC_NAMES if c in table.colnames), None)
    mag_col = next((c for c in (band, f"mag_{band}", _APASS_BANDS.get(band, "")) if c in table.colnames), None)
    if ra_col is None or dec_col is None or mag_col is None:
        raise ValueError(f"the reference table needs RA, Dec and {band!r} magnitude columns; it has "
                         f"{', '.join(table.colnames)}")

    def col(name):
        c = table[name]
        values = np.asarray(c.filled(np.nan) if hasattr(c, "filled") else c, dtype=float)
        return values

    return col(ra_col), col(dec_col), col(mag_col)


def make_reference_field(*, ra_deg: float, dec_deg: float, radius_deg: float, n_stars: int, seed: int = 0,
                         mag_range: tuple[float, float] = (12.0, 20.0)) -> ReferenceStars:
    """Synthetic reference stars (survey ``"SIM"``) from the seeded field simulator :mod:`shared.simfield`.

    Parameters
    ----------
    ra_deg, dec_deg : float
        Centre of the cone.
    radius_deg : float
        Radius of the cone.
    n_stars : int
        Number of stars.
    seed : int, optional
        Random seed.
    mag_range : (float, float), optional
        Range of the r magnitudes (number counts rising as 10^(0.3 m)).

    Returns
    -------
    ReferenceStars
        Bands B, V, g, r, i with errors (APASS-like), labelled synthetic in ``version``.
    """
    from shared.simfield import simulate_field

    field = simulate_field(ra_deg=ra_deg, dec_deg=dec_deg, radius_arcmin=radius_deg * 60.0, n_stars=n_stars,
                           seed=seed, target_mag=None, outlier_fraction=0.0, mag_range=mag_range, n_faint=0)
    ref = field.reference
    mags, errs = {}, {}
    for band, col in _APASS_BANDS.items():
        mags[band] = np.asarray(ref[col].filled(np.nan), dtype=float)
        errs[band] = np.asarray(ref[f"e_{col}"].filled(np.nan), dtype=float)
    return ReferenceStars(survey="SIM", version="synthetic-image-1", ra_deg=np.asarray(ref["RAJ2000"], float),
                          dec_deg=np.asarray(ref["DEJ2000"], float), mags=mags, mag_errs=errs)


def _render(image: np.ndarray, x: np.ndarray, y: np.ndarray, flux: np.ndarray, alpha: float, beta: float,
            half: int) -> None:
    """Add Moffat stars (unit-sum stamps of side 2*half+1 times ``flux``) to ``image`` in place."""
    ny, nx = image.shape
    if x.size == 0:
        return
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    off = np.arange(-half, half + 1)
    gx = ix[:, None] + off[None, :]  # (n, s)
    gy = iy[:, None] + off[None, :]
    dx2 = (gx - x[:, None]) ** 2
    dy2 = (gy - y[:, None]) ** 2
    prof = (1.0 + (dy2[:, :, None] + dx2[:, None, :]) / alpha**2) ** (-beta)  # (n, s, s)
    prof *= (flux / prof.sum(axis=(1, 2)))[:, None, None]
    yy = np.broadcast_to(gy[:, :, None], prof.shape)
    xx = np.broadcast_to(gx[:, None, :], prof.shape)
    inside = (xx >= 0) & (xx < nx) & (yy >= 0) & (yy < ny)
    flat = (yy[inside] * nx + xx[inside]).astype(np.int64)
    image += np.bincount(flat, weights=prof[inside], minlength=nx * ny).reshape(ny, nx)


def _limit_5sigma(*, sky_adu: float, gain: float, read_noise_e: float, alpha: float, beta: float, half: int,
                  exptime_s: float, n_sigma: float) -> float | None:
    """Instrumental magnitude of the ``n_sigma`` limit of fixed-position PSF photometry on pure sky."""
    off = np.arange(-half, half + 1)
    prof = (1.0 + (off[:, None] ** 2 + off[None, :] ** 2) / alpha**2) ** (-beta)
    prof /= prof.sum()
    var_adu = max(sky_adu, 0.0) / gain + (read_noise_e / gain) ** 2
    sigma_flux = math.sqrt(var_adu / float((prof**2).sum()))
    return -2.5 * math.log10(n_sigma * sigma_flux / exptime_s) if sigma_flux > 0 else None


def simulate_image(
    *,
    reference: ReferenceStars | Table | Mapping[str, Any],
    band: str = "r",
    size_px: int | tuple[int, int] = 1024,
    pixel_scale_arcsec: float = 0.4,
    seeing_arcsec: float = 1.2,
    moffat_beta: float = 3.5,
    zeropoint_mag: float = 25.0,
    exptime_s: float = 60.0,
    sky_adu: float = 500.0,
    gain: float = 2.0,
    read_noise_e: float = 8.0,
    saturation_adu: float = 60000.0,
    sip_strength_px: float = 1.5,
    rotation_deg: float = 0.0,
    flip: bool = False,
    centre_ra_deg: float | None = None,
    centre_dec_deg: float | None = None,
    wcs_offset_deg: float | None = 0.0,
    transient_mag: float | None = None,
    event_xy_px: tuple[float, float] | None = None,
    n_faint: int = 0,
    n_cosmic: int = 20,
    filter_name: str | None = None,
    mjd: float = 61000.25,
    airmass: float = 1.2,
    seed: int = 0,
    n_sigma_limit: float = 5.0,
) -> SimulatedImage:
    """Simulate a reduced frame of a reference field; see the module text for the model.

    Parameters
    ----------
    reference : ReferenceStars or Table
        The stars of the field (positions in degrees, magnitudes in ``band``); a table needs RA/Dec
        columns and a ``band`` (or APASS-layout) magnitude column.
    band : str, optional
        Band of the magnitudes drawn.
    size_px : int or (int, int), optional
        Frame size, square or ``(ny, nx)``.
    pixel_scale_arcsec, seeing_arcsec, moffat_beta : float, optional
        Pixel scale, FWHM of the PSF and its Moffat ``beta``.
    zeropoint_mag : float, optional
        Magnitude that gives 1 ADU per second.
    exptime_s, sky_adu, gain, read_noise_e, saturation_adu : float, optional
        Exposure, sky level per pixel, gain (e-/ADU), read noise (e-), saturation level (ADU).
    sip_strength_px : float, optional
        Distortion at the corners (pixels).
    rotation_deg, flip : optional
        Orientation of the frame.
    centre_ra_deg, centre_dec_deg : float, optional
        Frame centre; default the middle of the reference stars.
    wcs_offset_deg : float or None, optional
        Offset of the header WCS (and pointing keywords) from the truth; ``None`` writes no WCS.
    transient_mag : float or None, optional
        Magnitude of the transient at the event position; ``None``: no transient (the event
        position is still chosen and returned).
    event_xy_px : (float, float), optional
        Pixel position (0-based x, y) of the event; default a seeded position in the inner part of
        the frame at least 4 FWHM from every reference star brighter than 3 mag below the faintest.
    n_faint, n_cosmic : int, optional
        Extra faint stars not in the reference; cosmic-ray hits.
    filter_name : str, optional
        ``FILTER`` keyword (default ``band``).
    mjd, airmass : float, optional
        Start of the exposure (MJD, UTC) and airmass written in the header.
    seed : int, optional
        Random seed.
    n_sigma_limit : float, optional
        Significance of the theoretical limit in the truth.

    Returns
    -------
    SimulatedImage
        ``(fits_bytes, truth)``.
    """
    ny, nx = (size_px, size_px) if isinstance(size_px, (int, np.integer)) else tuple(int(s) for s in size_px)
    if nx < 16 or ny < 16 or pixel_scale_arcsec <= 0 or seeing_arcsec <= 0 or exptime_s <= 0 or gain <= 0:
        raise ValueError("size_px must be at least 16 and pixel scale, seeing, exposure and gain positive")
    rng = np.random.default_rng(seed)
    ra, dec, mag = _reference_arrays(reference, band)
    good = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(mag)
    ra, dec, mag = ra[good], dec[good], mag[good]
    if centre_ra_deg is None or centre_dec_deg is None:
        if ra.size == 0:
            raise ValueError("no reference star with a position and a magnitude: give the centre")
        vec = np.array([np.cos(np.radians(dec)) * np.cos(np.radians(ra)),
                        np.cos(np.radians(dec)) * np.sin(np.radians(ra)), np.sin(np.radians(dec))]).mean(axis=1)
        centre_ra_deg = math.degrees(math.atan2(vec[1], vec[0])) % 360.0
        centre_dec_deg = math.degrees(math.atan2(vec[2], math.hypot(vec[0], vec[1])))
    wcs = true_wcs(centre_ra_deg=centre_ra_deg, centre_dec_deg=centre_dec_deg, size_px=(ny, nx),
                   pixel_scale_arcsec=pixel_scale_arcsec, rotation_deg=rotation_deg, flip=flip,
                   sip_strength_px=sip_strength_px)

    fwhm_px = seeing_arcsec / pixel_scale_arcsec
    alpha = moffat_alpha_px(fwhm_px, moffat_beta)
    half = int(math.ceil(6.0 * fwhm_px)) + 2
    margin = half + 2
    # stars: project only those near the frame (a cheap cone cut first)
    half_diag_deg = math.hypot(nx, ny) / 2.0 * pixel_scale_arcsec / 3600.0
    cosd = np.sin(np.radians(dec)) * math.sin(math.radians(centre_dec_deg)) + np.cos(np.radians(dec)) * math.cos(
        math.radians(centre_dec_deg)) * np.cos(np.radians(ra - centre_ra_deg))
    near = cosd > math.cos(math.radians(1.2 * half_diag_deg + 2 * sip_strength_px * pixel_scale_arcsec / 3600))
    ra, dec, mag = ra[near], dec[near], mag[near]
    x, y = wcs.all_world2pix(ra, dec, 0) if ra.size else (np.zeros(0), np.zeros(0))
    on = (x > -margin) & (x < nx - 1 + margin) & (y > -margin) & (y < ny - 1 + margin)
    x, y, mag = x[on], y[on], mag[on]
    s_ra, s_dec = ra[on], dec[on]

    # the event position: clear of bright stars
    if event_xy_px is None:
        faint_end = float(np.max(mag)) if mag.size else 20.0
        bright = mag < faint_end - 3.0
        for _ in range(1000):
            ex, ey = rng.uniform(0.25, 0.75) * (nx - 1), rng.uniform(0.25, 0.75) * (ny - 1)
            d = np.hypot(x[bright] - ex, y[bright] - ey)
            d_any = np.hypot(x - ex, y - ey)
            if (d.size == 0 or d.min() > 4 * fwhm_px) and (d_any.size == 0 or d_any.min() > 2 * fwhm_px):
                break
        event_xy_px = (ex, ey)
    ex, ey = float(event_xy_px[0]), float(event_xy_px[1])
    e_ra, e_dec = (float(v) for v in wcs.all_pix2world([[ex, ey]], 0)[0])

    # faint stars beyond the reference
    faint_lo = float(np.max(mag)) + 0.5 if mag.size else 20.5
    f_x = rng.uniform(0, nx - 1, n_faint)
    f_y = rng.uniform(0, ny - 1, n_faint)
    f_mag = rng.uniform(faint_lo, faint_lo + 1.5, n_faint)
    far = np.hypot(f_x - ex, f_y - ey) > 4 * fwhm_px
    f_x, f_y, f_mag = f_x[far], f_y[far], f_mag[far]

    def flux_of(m):
        return exptime_s * 10.0 ** (-0.4 * (np.asarray(m, float) - zeropoint_mag))

    image = np.zeros((ny, nx), dtype=np.float64)
    _render(image, x, y, flux_of(mag), alpha, moffat_beta, half)
    _render(image, f_x, f_y, flux_of(f_mag), alpha, moffat_beta, half)
    transient_flux = None
    if transient_mag is not None:
        transient_flux = float(flux_of(transient_mag))
        _render(image, np.array([ex]), np.array([ey]), np.array([transient_flux]), alpha, moffat_beta, half)
    gy, gx = np.mgrid[0:ny, 0:nx]
    sky = sky_adu * (1.0 + 0.05 * (gx / nx - 0.5) + 0.03 * (gy / ny - 0.5))
    electrons = rng.poisson((image + sky) * gain).astype(np.float64)
    electrons += rng.normal(0.0, read_noise_e, size=electrons.shape)
    data = electrons / gain
    n_saturated = int((data >= saturation_adu).sum())
    np.minimum(data, saturation_adu, out=data)
    cr_x = rng.integers(0, nx, n_cosmic)
    cr_y = rng.integers(0, ny, n_cosmic)
    for cx, cy in zip(cr_x, cr_y, strict=True):
        length = int(rng.integers(1, 4))
        dxy = rng.integers(-1, 2, size=2)
        for k in range(length):
            px, py = cx + k * dxy[0], cy + k * dxy[1]
            if 0 <= px < nx and 0 <= py < ny:
                data[py, px] += rng.uniform(2000, 20000)

    # header
    from astropy.time import Time

    t = Time(mjd, format="mjd", scale="utc")
    hdr = fits.Header()
    hdr["OBJECT"] = ("SIMULATED", "synthetic frame made by shared.simimage")
    hdr["SYNTHET"] = (True, "simulated data, not an observation")
    hdr["TELESCOP"] = "SIM-1m"
    hdr["INSTRUME"] = "SIMCAM"
    hdr["DATE-OBS"] = (t.isot, "[UTC] start of exposure")
    hdr["EXPTIME"] = (float(exptime_s), "[s] exposure time")
    hdr["FILTER"] = filter_name or band
    hdr["GAIN"] = (float(gain), "[e-/ADU]")
    hdr["RDNOISE"] = (float(read_noise_e), "[e-] read noise")
    hdr["SATURATE"] = (float(saturation_adu), "[ADU] saturation level")
    hdr["PIXSCALE"] = (float(pixel_scale_arcsec), "[arcsec/pixel] nominal")
    hdr["AIRMASS"] = float(airmass)
    hdr["LONGITUD"] = (20.81, "[deg] east")
    hdr["LATITUDE"] = (-32.38, "[deg]")
    truth_header = {k: v for k, v in wcs.to_header(relax=True).items()}
    header_wcs = None
    offset_pa = None
    if wcs_offset_deg is not None:
        offset_pa = float(rng.uniform(0, 360))
        h_ra, h_dec = _offset_deg(centre_ra_deg, centre_dec_deg, float(wcs_offset_deg), offset_pa)
        header_wcs = true_wcs(centre_ra_deg=h_ra, centre_dec_deg=h_dec, size_px=(ny, nx),
                              pixel_scale_arcsec=pixel_scale_arcsec, rotation_deg=rotation_deg, flip=flip)
        hdr.update(header_wcs.to_header())
        p_ra, p_dec = h_ra, h_dec
    else:
        p_ra, p_dec = None, None
    if p_ra is not None:
        hdr["OBJCTRA"], hdr["OBJCTDEC"] = _sexagesimal(p_ra, p_dec)
    hdu = fits.PrimaryHDU(data=data.astype(np.float32), header=hdr)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        hdu.writeto(buf)

    truth = {
        "synthetic": True,
        "seed": int(seed),
        "size_px": [ny, nx],
        "band": band,
        "zeropoint_mag": float(zeropoint_mag),
        "exptime_s": float(exptime_s),
        "pixel_scale_arcsec": float(pixel_scale_arcsec),
        "seeing_arcsec": float(seeing_arcsec),
        "fwhm_px": float(fwhm_px),
        "moffat_beta": float(moffat_beta),
        "sky_adu": float(sky_adu),
        "gain": float(gain),
        "read_noise_e": float(read_noise_e),
        "saturation_adu": float(saturation_adu),
        "n_saturated_pixels": n_saturated,
        "wcs_header": truth_header,
        "header_wcs_offset_deg": None if wcs_offset_deg is None else float(wcs_offset_deg),
        "header_wcs_offset_pa_deg": offset_pa,
        "centre_ra_deg": float(centre_ra_deg),
        "centre_dec_deg": float(centre_dec_deg),
        "event_ra_deg": e_ra,
        "event_dec_deg": e_dec,
        "event_xy_px": [ex, ey],
        "transient_mag": None if transient_mag is None else float(transient_mag),
        "transient_flux_adu": transient_flux,
        "transient_instrumental_mag": None if transient_mag is None else float(transient_mag - zeropoint_mag),
        "n_stars_drawn": int(x.size),
        "n_faint_drawn": int(f_x.size),
        "star_ra_deg": s_ra.tolist(),
        "star_dec_deg": s_dec.tolist(),
        "star_x_px": x.tolist(),
        "star_y_px": y.tolist(),
        "star_mag": mag.tolist(),
        "n_cosmic": int(n_cosmic),
        "mjd_start": float(mjd),
        "airmass": float(airmass),
        "sky_sigma_adu": math.sqrt(max(sky_adu, 0.0) / gain + (read_noise_e / gain) ** 2),
        "limit_sigma": float(n_sigma_limit),
        "limit_instrumental_mag": _limit_5sigma(
            sky_adu=float(sky[int(round(ey)), int(round(ex))]), gain=gain, read_noise_e=read_noise_e, alpha=alpha,
            beta=moffat_beta, half=half, exptime_s=exptime_s, n_sigma=n_sigma_limit),
    }
    return SimulatedImage((buf.getvalue(), truth))


def as_int16(data: bytes) -> bytes:
    """A simulated frame (FITS bytes) as 16-bit integers with BZERO 32768, as CCD cameras write it: half
    the bytes of float32."""
    with fits.open(io.BytesIO(data)) as hdus:
        hdus[0].scale("int16", bzero=32768)
        out = io.BytesIO()
        hdus.writeto(out)
    return out.getvalue()


def select_cone(reference: ReferenceStars, ra_deg: float, dec_deg: float, radius_deg: float) -> ReferenceStars:
    """The stars of ``reference`` within ``radius_deg`` of a position (what the store's cone returns).

    Parameters
    ----------
    reference : ReferenceStars
    ra_deg, dec_deg, radius_deg : float

    Returns
    -------
    ReferenceStars
    """
    ra, dec = np.radians(reference.ra_deg), np.radians(reference.dec_deg)
    cos_d = (np.sin(dec) * math.sin(math.radians(dec_deg))
             + np.cos(dec) * math.cos(math.radians(dec_deg)) * np.cos(ra - math.radians(ra_deg)))
    keep = cos_d >= math.cos(math.radians(radius_deg))
    return ReferenceStars(survey=reference.survey, version=reference.version, ra_deg=reference.ra_deg[keep],
                          dec_deg=reference.dec_deg[keep], mags={b: v[keep] for b, v in reference.mags.items()},
                          mag_errs={b: v[keep] for b, v in reference.mag_errs.items()})


def wcs_error_vs_truth_arcsec(solved: WCS, truth_header: Mapping[str, Any], shape: tuple[int, int],
                              grid: int = 25) -> float:
    """How far a solved WCS is from the simulation's true one: the RMS, over a ``grid`` x ``grid`` lattice
    of pixels spanning the whole frame (corners included), of the angle between the two sky positions."""
    truth = WCS(dict(truth_header))
    gy, gx = np.mgrid[0:shape[0] - 1:grid * 1j, 0:shape[1] - 1:grid * 1j]
    a_ra, a_dec = (np.radians(v) for v in solved.all_pix2world(gx.ravel(), gy.ravel(), 0))
    b_ra, b_dec = (np.radians(v) for v in truth.all_pix2world(gx.ravel(), gy.ravel(), 0))
    hav = np.sin((b_dec - a_dec) / 2) ** 2 + np.cos(a_dec) * np.cos(b_dec) * np.sin((b_ra - a_ra) / 2) ** 2
    sep_arcsec = np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0.0, 1.0)))) * 3600.0
    return float(np.sqrt(np.mean(sep_arcsec ** 2)))
