"""The downloadable products of a measured image, written from what the measurement has in memory.

Pure functions (run in the measuring process, after :func:`~services.photometry.science.measure`):
no file is read again and nothing is solved again.

* the catalogue of every star measured (the ``sources`` table, not only the calibration's stars), as
  SExtractor ``ASCII_HEAD`` text and as ``FITS_LDAC`` (``LDAC_IMHEAD`` with the image header cards,
  then ``LDAC_OBJECTS``); SExtractor column names, pixel positions 1-based as SExtractor writes them;
* the solved WCS as a FITS header with the image size (80-character cards, padded to 2880 bytes like
  astrometry.net's ``.wcs`` files): ``astropy.wcs.WCS(fits.Header.fromstring(text))`` reads it;
* a cutout around the event: a FITS image with the WCS moved to the cutout, and a PNG (asinh stretch,
  each image pixel 4 x 4 screen pixels, a marker with a gap at the event, north and east arrows).
"""
from __future__ import annotations

import io
import math
import warnings
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from services.photometry.science.model import FLAGS

#: The side of the cutout in image pixels, and how many screen pixels one image pixel takes in the PNG.
CUTOUT_PX = 64
PNG_ZOOM = 4

#: (SExtractor name, column of the sources table, description, unit); X/Y get +1 (1-based pixels).
COLUMNS: tuple[tuple[str, str | None, str, str], ...] = (
    ("NUMBER", None, "Running object number", ""),
    ("X_IMAGE", "x", "Object position along x", "pixel"),
    ("Y_IMAGE", "y", "Object position along y", "pixel"),
    ("ALPHA_J2000", "ra_deg", "Right ascension of barycenter (J2000)", "deg"),
    ("DELTA_J2000", "dec_deg", "Declination of barycenter (J2000)", "deg"),
    ("MAG_PSF", "mag_psf", "Magnitude from PSF-fitting (instrumental, per second)", "mag"),
    ("MAGERR_PSF", "mag_psf_err", "RMS magnitude error from PSF-fitting", "mag"),
    ("MAG_APER", "mag_aper", "Aperture-corrected magnitude (instrumental, per second)", "mag"),
    ("MAGERR_APER", "mag_aper_err", "RMS error of the aperture magnitude", "mag"),
    ("FLUX_PSF", "flux_psf", "Flux from PSF-fitting", "count"),
    ("FLUXERR_PSF", "flux_psf_err", "RMS flux error from PSF-fitting", "count"),
    ("FLUX_APER", "flux_aper", "Aperture-corrected flux", "count"),
    ("FLUXERR_APER", "flux_aper_err", "RMS error of the aperture flux", "count"),
    ("FLUX_MAX", "peak_adu", "Peak pixel value (background included)", "count"),
    ("FWHM_IMAGE", "fwhm_moments_px", "FWHM from the second moments", "pixel"),
    ("CHI2_PSF", "psf_chi2", "Reduced chi-square of the PSF fit", ""),
    ("FLAGS_PHOT", "flags", "Flags: " + ", ".join(f"{bit} {name}" for name, bit in FLAGS.items()), ""),
)

_INTEGER = {"NUMBER", "FLAGS_PHOT"}


def _column(sources: Table, name: str, source: str | None) -> np.ndarray:
    if source is None:
        return np.arange(1, len(sources) + 1, dtype=np.int32)
    values = np.asarray(sources[source])
    if name in ("X_IMAGE", "Y_IMAGE"):
        return values.astype(float) + 1.0
    return values.astype(np.int32) if name in _INTEGER else values.astype(float)


def catalogue_columns(sources: Table) -> dict[str, np.ndarray]:
    """The sources table under SExtractor names, in :data:`COLUMNS` order."""
    return {name: _column(sources, name, source) for name, source, _, _ in COLUMNS}


def _cell(name: str, value: Any) -> str:
    if name in _INTEGER:
        return f"{int(value):d}"
    value = float(value)
    if not math.isfinite(value):
        return "nan"
    if name in ("ALPHA_J2000", "DELTA_J2000"):
        return f"{value:.7f}"
    if name.startswith(("FLUX", "CHI2")):
        return f"{value:.6g}"
    return f"{value:.4f}"


def ascii_head(sources: Table) -> bytes:
    """SExtractor ``ASCII_HEAD``: ``#   N NAME  description  [unit]`` lines, then one row per star."""
    columns = catalogue_columns(sources)
    lines = [f"#{number:4d} {name:<22} {description:<58} [{unit}]" if unit else f"#{number:4d} {name:<22} {description}"
             for number, (name, _, description, unit) in enumerate(COLUMNS, start=1)]
    names = list(columns)
    for row in zip(*columns.values(), strict=True):
        lines.append(" ".join(_cell(name, value) for name, value in zip(names, row, strict=True)))
    return ("\n".join(lines) + "\n").encode("ascii")


def image_header(wcs_header: dict, extra: dict[str, Any], shape: tuple[int, int]) -> fits.Header:
    """The image's header as the products carry it: its size, the solved WCS and what was observed."""
    header = fits.Header()
    header["SIMPLE"] = (True, "conforms to FITS standard")
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = shape[1]
    header["NAXIS2"] = shape[0]
    for key, value in wcs_header.items():
        if key.upper() not in ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "COMMENT", "HISTORY"):
            header[key] = value
    for key, value in extra.items():
        if value is not None:
            header[key] = value
    return header


def ldac(sources: Table, header: fits.Header) -> bytes:
    """SExtractor ``FITS_LDAC``: primary, ``LDAC_IMHEAD`` (the header cards in one cell), ``LDAC_OBJECTS``."""
    text = header.tostring(endcard=True, padding=False)
    n_cards = len(text) // 80
    imhead = fits.BinTableHDU.from_columns(
        [fits.Column(name="Field Header Card", format=f"{80 * n_cards}A", dim=f"(80, {n_cards})",
                     array=np.array([[text[i:i + 80] for i in range(0, len(text), 80)]]))], name="LDAC_IMHEAD")
    columns = catalogue_columns(sources)
    units = {name: unit for name, _, _, unit in COLUMNS}
    objects = fits.BinTableHDU.from_columns(
        [fits.Column(name=name, format="J" if name in _INTEGER else "D", unit=units[name] or None, array=values)
         for name, values in columns.items()], name="LDAC_OBJECTS")
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), imhead, objects]).writeto(buffer)
    return buffer.getvalue()


def wcs_header_text(wcs_header: dict, shape: tuple[int, int]) -> bytes:
    """The solved WCS as a FITS header (80-character cards, END, padded to 2880 bytes), with the image size."""
    header = fits.Header()
    header["NAXIS"] = (2, "the image the WCS belongs to")
    header["NAXIS1"] = shape[1]
    header["NAXIS2"] = shape[0]
    for key, value in wcs_header.items():
        if key.upper() not in ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "COMMENT", "HISTORY"):
            header[key] = value
    return header.tostring(endcard=True, padding=True).encode("ascii")


def _cutout(data: np.ndarray, x: float, y: float, size: int) -> tuple[np.ndarray, int, int]:
    """``size`` x ``size`` pixels centred on (x, y) (0-based), NaN off the frame; the (x0, y0) of its corner."""
    x0, y0 = int(round(x)) - size // 2, int(round(y)) - size // 2
    out = np.full((size, size), np.nan, dtype=np.float32)
    ny, nx = data.shape
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + size, nx), min(y0 + size, ny)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = data[sy0:sy1, sx0:sx1]
    return out, x0, y0


def cutout_fits(data: np.ndarray, wcs: WCS, x: float, y: float, extra: dict[str, Any],
                size: int = CUTOUT_PX) -> bytes:
    """The pixels around the event with the WCS moved to the cutout (CRPIX shifted; SIP kept)."""
    pixels, x0, y0 = _cutout(data, x, y, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moved = wcs.deepcopy()
        moved.wcs.crpix = moved.wcs.crpix - np.array([x0, y0])
        header = moved.to_header(relax=True)
    for key, value in extra.items():
        if value is not None:
            header[key] = value
    header["LTV1"] = (-x0, "cutout origin: image x = cutout x - LTV1")
    header["LTV2"] = (-y0, "cutout origin: image y = cutout y - LTV2")
    buffer = io.BytesIO()
    fits.PrimaryHDU(data=pixels, header=header).writeto(buffer)
    return buffer.getvalue()


def _stretch(pixels: np.ndarray, background: float | None, noise: float | None) -> np.ndarray:
    """0..255, asinh: linear within a few noise levels of the background, logarithmic above."""
    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0:
        return np.zeros(pixels.shape, np.uint8)
    level = float(np.median(finite)) if background is None else float(background)
    sigma = noise if noise and noise > 0 else float(np.median(np.abs(finite - level)) * 1.4826) or 1.0
    top = max(float(np.percentile(finite, 99.7)) - level, 10.0 * sigma)
    soft = 3.0 * sigma
    lifted = np.clip(pixels - level + 2.0 * sigma, 0.0, None)  # the sky a little above black
    scaled = np.arcsinh(lifted / soft) / math.asinh((top + 2.0 * sigma) / soft)
    out = np.clip(np.nan_to_num(scaled, nan=0.0) * 255.0, 0, 255).astype(np.uint8)
    out[~np.isfinite(pixels)] = 40  # off the frame or missing: dark grey, not black sky
    return out


def _direction(wcs: WCS, x: float, y: float, d_ra_deg: float, d_dec_deg: float) -> tuple[float, float]:
    """The unit vector in the frame's pixels towards a small step on the sky (north or east)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ra, dec = wcs.wcs_pix2world([[x, y]], 0)[0]
        step = 1.0 / 3600.0 * 10.0
        cos_dec = max(math.cos(math.radians(dec)), 1e-6)
        px, py = wcs.wcs_world2pix([[ra + d_ra_deg * step / cos_dec, dec + d_dec_deg * step]], 0)[0]
    dx, dy = float(px - x), float(py - y)
    norm = math.hypot(dx, dy) or 1.0
    return dx / norm, dy / norm


def cutout_png(data: np.ndarray, wcs: WCS, x: float, y: float, *, background: float | None = None,
               noise: float | None = None, size: int = CUTOUT_PX, zoom: int = PNG_ZOOM) -> bytes:
    """A PNG of the cutout, north and east marked, the event in the middle of a marker with a gap.

    Rows are flipped so that image y grows upwards, as ds9 shows a frame.
    """
    from PIL import Image, ImageDraw

    pixels, x0, y0 = _cutout(data, x, y, size)
    grey = np.kron(_stretch(pixels, background, noise)[::-1], np.ones((zoom, zoom), np.uint8))
    image = Image.fromarray(grey, mode="L").convert("RGB")
    draw = ImageDraw.Draw(image)
    side = size * zoom
    cx = (x - x0 + 0.5) * zoom
    cy = side - (y - y0 + 0.5) * zoom
    marker = (255, 80, 60)
    gap, arm = 3 * zoom, 7 * zoom
    for sx, sy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        draw.line([(cx + sx * gap, cy + sy * gap), (cx + sx * arm, cy + sy * arm)], fill=marker, width=2)
    # the compass in the lower-left corner: north and east as they lie on this cutout
    length = 5 * zoom
    ox, oy = length + 14, side - length - 14
    for label, (d_ra, d_dec) in (("N", (0.0, 1.0)), ("E", (1.0, 0.0))):
        dx, dy = _direction(wcs, x, y, d_ra, d_dec)
        ex, ey = ox + dx * length, oy - dy * length
        draw.line([(ox, oy), (ex, ey)], fill=(120, 200, 255), width=2)
        draw.text((ex + dx * 8 - 3, ey - dy * 8 - 5), label, fill=(120, 200, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def image_products(data: np.ndarray, wcs_header: dict, sources: Table, *, target_x_px: float | None,
                   target_y_px: float | None, in_frame: bool, observed: dict[str, Any],
                   background: float | None = None, noise: float | None = None) -> dict[str, bytes]:
    """Every product of one image, by kind (the cutouts only when the event is on the frame).

    ``observed`` holds header keywords to carry (EXPTIME, FILTER, MJD-OBS, OBJECT...).
    """
    wcs = WCS(wcs_header)
    header = image_header(wcs_header, observed, data.shape)
    products = {"catalogue_ascii": ascii_head(sources), "catalogue_ldac": ldac(sources, header),
                "wcs_header": wcs_header_text(wcs_header, data.shape)}
    if in_frame and target_x_px is not None and target_y_px is not None:
        products["cutout_fits"] = cutout_fits(data, wcs, target_x_px, target_y_px, observed)
        products["cutout_png"] = cutout_png(data, wcs, target_x_px, target_y_px, background=background, noise=noise)
    return products


#: filename and content type of each kind (the download routes' names).
FILES = {
    "catalogue_ascii": ("catalogue.cat", "text/plain; charset=us-ascii"),
    "catalogue_ldac": ("catalogue.ldac.fits", "application/fits"),
    "wcs_header": ("wcs.hdr", "text/plain; charset=us-ascii"),
    "cutout_png": ("cutout.png", "image/png"),
    "cutout_fits": ("cutout.fits", "application/fits"),
}
