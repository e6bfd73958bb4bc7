"""Read an observer's uploaded source catalogue into cleaned sky positions and magnitudes."""
from __future__ import annotations

import numbers
from collections import Counter
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shared.catalogue._ascii import read_ascii_head
from shared.catalogue._fits import read_fits
from shared.catalogue.model import CatalogueError, Columns, RawTable, StarTable
from shared.unpacking import UnpackedTooLarge, UnpackError, gunzip

POSITION_COLUMNS = (
    ("ALPHA_J2000", "DELTA_J2000"),
    ("ALPHAWIN_J2000", "DELTAWIN_J2000"),
    ("XWIN_WORLD", "YWIN_WORLD"),
    ("X_WORLD", "Y_WORLD"),
    ("RA", "DEC"),
)
MAG_COLUMNS = ("MAG_BEST", "MAG_AUTO", "MAG_APER", "MAG_ISO", "MAG_PSF")
FLUX_COLUMNS = ("FLUX_BEST", "FLUX_AUTO", "FLUX_APER", "FLUX_ISO")
# Instrumental magnitudes: -2.5 log10(counts) reaches about -21 for bright stars on a 1-m
# telescope (the LCO photpipe sample), so the lower limit sits well below that.
MAG_LIMITS = (-30.0, 40.0)
MAX_MAG_ERR = 5.0
SENTINEL = 99.0  # SExtractor writes 99 (or -99) where a measurement failed
_NO_SKY_POSITIONS = (
    "run astrometry on the image first (e.g. astrometry.net or SCAMP) and re-run SExtractor with "
    "ALPHA_J2000 and DELTA_J2000 in its parameter file, or upload the image instead."
)


def read_catalogue(
    data: bytes,
    *,
    filename: str | None = None,
    exptime_s: float | None = None,
    aperture_index: int = 0,
    min_stars: int = 5,
) -> StarTable:
    """Read a SExtractor-style source catalogue and return its usable stars.

    Parameters
    ----------
    data : bytes
        The uploaded file: SExtractor ASCII_HEAD text, a FITS binary table or FITS_LDAC,
        optionally gzip-compressed.  The format is recognised from the bytes.
    filename : str, optional
        The observer's name for the file; only used to word error messages.
    exptime_s : float, optional
        Exposure time in seconds dividing the fluxes when the catalogue has fluxes but no
        magnitudes.  Defaults to the header EXPTIME (or EXPOSURE), else 1 s; the zero point
        of the calibration absorbs the choice.
    aperture_index : int, default 0
        Element of a vector aperture column (MAG_APER, FLUX_APER) to use.
    min_stars : int, default 5
        Fewest usable stars accepted.

    Returns
    -------
    StarTable
        Positions (deg) and instrumental magnitudes with errors, float64, finite only, with
        the column used, the rows read and the rows dropped by reason.

    Raises
    ------
    CatalogueError
        When the file cannot be calibrated; the message is one sentence for the observer
        saying what is wrong and what to do.
    """
    data = _unpacked(bytes(data))
    if data.startswith(b"SIMPLE  ="):
        file_format, raw = read_fits(data, _is_usable)
    elif (filename or "").lower().endswith((".fits", ".fit", ".fts", ".ldac")):
        raise CatalogueError(
            f"'{filename}' is named like a FITS file but does not start with a FITS header, so it "
            "is damaged or not FITS; export the catalogue again and upload that file."
        )
    else:
        file_format, raw = "ASCII_HEAD", read_ascii_head(data)
    ra, dec = _sky_positions(raw.columns)
    ra, n_wrapped = _wrapped_ra(ra)
    photometry = _photometry(raw, aperture_index, exptime_s)
    keep, n_dropped = _clean(ra, dec, photometry)
    n_dropped = dict(Counter(raw.n_dropped) + Counter(n_dropped))
    _require_enough(int(keep.sum()), raw.n_input, n_dropped, min_stars)
    return StarTable(
        ra_deg=np.ascontiguousarray(ra[keep], dtype=np.float64),
        dec_deg=np.ascontiguousarray(dec[keep], dtype=np.float64),
        mag=np.ascontiguousarray(photometry.mag[keep], dtype=np.float64),
        mag_err=np.ascontiguousarray(photometry.mag_err[keep], dtype=np.float64),
        file_format=file_format,
        mag_column=photometry.column,
        n_input=raw.n_input,
        n_dropped=n_dropped,
        header=dict(raw.header),
        exptime_s=photometry.exptime_s,
        exptime_source=photometry.exptime_source,
        n_ra_wrapped=int(np.count_nonzero(keep & n_wrapped)),
    )


def _wrapped_ra(ra: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """RA in [-180, 0) (some pipelines write RA - 360) moved to [180, 360); the mask of moved rows."""
    with np.errstate(invalid="ignore"):
        wrapped = (ra >= -180.0) & (ra < 0.0)
    if not wrapped.any():
        return ra, wrapped
    return np.where(wrapped, ra + 360.0, ra), wrapped


@dataclass(frozen=True)
class _Photometry:
    """Magnitudes chosen from the catalogue (converted from fluxes when needed)."""

    column: str
    mag: NDArray[np.float64]
    mag_err: NDArray[np.float64]
    flux: NDArray[np.float64] | None = None
    exptime_s: float | None = None
    exptime_source: str = ""


def _unpacked(data: bytes) -> bytes:
    """The bytes themselves, or their gzip decompression (streamed, stopped at the process's unpacked
    limit: ``shared.unpacking``)."""
    if not data.strip():
        raise CatalogueError("the uploaded file is empty; upload the catalogue file written by SExtractor.")
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        data = gunzip(data)
    except UnpackError as exc:
        raise CatalogueError(
            f"the gzip-compressed file is damaged ({exc}); compress the catalogue again "
            "or upload it uncompressed."
        ) from exc
    except UnpackedTooLarge as exc:
        raise CatalogueError(
            f"the catalogue is larger than {exc.limit / 1e6:g} MB once decompressed, the largest this server "
            "accepts; upload the catalogue of a single image."
        ) from exc
    if data[:2] == b"\x1f\x8b":
        raise CatalogueError("the file is compressed twice with gzip; decompress it once and upload it again.")
    return _unpacked(data)


def _is_usable(columns: Columns) -> bool:
    """Whether a table has sky positions and some magnitude or flux."""
    has_positions = any(ra in columns and dec in columns for ra, dec in POSITION_COLUMNS)
    has_photometry = any(name in columns or f"{name}1" in columns for name in MAG_COLUMNS + FLUX_COLUMNS)
    return has_positions and has_photometry


def _sky_positions(columns: Columns) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """RA and Dec of the first column pair holding any real (finite, not 0,0) position."""
    pairs = [(ra, dec) for ra, dec in POSITION_COLUMNS if ra in columns and dec in columns]
    if not pairs:
        raise CatalogueError(
            f"the catalogue has no sky positions (ALPHA_J2000/DELTA_J2000 columns); {_NO_SKY_POSITIONS}"
        )
    for ra_name, dec_name in pairs:
        ra, dec = columns[ra_name], columns[dec_name]
        real = np.isfinite(ra) & np.isfinite(dec) & ((ra != 0) | (dec != 0)) if ra.ndim == dec.ndim == 1 else False
        if np.any(real):
            return ra, dec
    names = "/".join(pairs[0])
    raise CatalogueError(
        f"the catalogue's sky positions ({names}) are all zero or missing, so the image had no "
        f"astrometric solution when SExtractor ran; {_NO_SKY_POSITIONS}"
    )


def _photometry(raw: RawTable, aperture_index: int, exptime_s: float | None) -> _Photometry:
    """Magnitudes from the preferred MAG_* column, else from the preferred FLUX_* column."""
    found = _measurement(raw.columns, MAG_COLUMNS, aperture_index)
    if found:
        return _Photometry(*found)
    found = _measurement(raw.columns, FLUX_COLUMNS, aperture_index)
    if not found:
        raise _no_photometry(raw.columns)
    column, flux, flux_err = found
    exptime, source = _exposure(exptime_s, raw.header)
    with np.errstate(all="ignore"):
        mag = -2.5 * np.log10(flux / exptime)
        mag_err = 2.5 / np.log(10.0) * flux_err / flux
    return _Photometry(column, mag, mag_err, flux, exptime, source)


def _measurement(
    columns: Columns, names: tuple[str, ...], aperture_index: int
) -> tuple[str, NDArray[np.float64], NDArray[np.float64]] | None:
    """(label, values, errors) of the first of ``names`` present together with its error column."""
    for name in names:
        index = aperture_index if name.endswith("_APER") else None
        value = _column(columns, name, index)
        error = _column(columns, name.replace("_", "ERR_", 1), index)
        if value is not None and error is not None:
            return value[0], value[1], error[1]
    return None


def _column(columns: Columns, name: str, index: int | None) -> tuple[str, NDArray[np.float64]] | None:
    """(label, 1-D values) of a column; ``index`` picks an aperture of MAG_APER-like columns."""
    numbered = f"{name}{(index or 0) + 1}"  # ORAC-DR writes FLUX_APER1, FLUX_APER2...
    if name not in columns:
        return (numbered, columns[numbered]) if index is not None and numbered in columns else None
    values = columns[name]
    if values.ndim == 1:
        if not index:
            return name, values
        if numbered in columns:
            return numbered, columns[numbered]
        raise CatalogueError(
            f"aperture_index {index} was requested but {name} holds a single aperture; use aperture_index 0."
        )
    if index is None:
        return None
    if not 0 <= index < values.shape[1]:
        raise CatalogueError(
            f"aperture_index {index} is out of range: {name} holds {values.shape[1]} apertures, "
            f"numbered 0 to {values.shape[1] - 1}."
        )
    return f"{name}[{index}]", values[:, index]


def _no_photometry(columns: Columns) -> CatalogueError:
    alone = [name for name in MAG_COLUMNS + FLUX_COLUMNS if name in columns]
    if alone:
        error = alone[0].replace("_", "ERR_", 1)
        return CatalogueError(
            f"the catalogue has {alone[0]} but not its error column {error}; add {error} to the "
            "SExtractor parameter file and run SExtractor again."
        )
    hint = " (it has only MAG/MAGERR, like a reference catalogue)" if "MAG" in columns else ""
    return CatalogueError(
        f"the catalogue has no instrumental magnitude or flux column{hint}; upload your own SExtractor "
        "catalogue with MAG_AUTO and MAGERR_AUTO (or MAG_APER, MAG_BEST, FLUX_AUTO and their errors)."
    )


def _exposure(exptime_s: float | None, header: dict[str, object]) -> tuple[float, str]:
    """Exposure time dividing the fluxes, and where it came from."""
    if exptime_s is not None:
        if not isinstance(exptime_s, numbers.Real) or not np.isfinite(exptime_s) or exptime_s <= 0:
            raise CatalogueError(f"the exposure time must be a positive number of seconds, not {exptime_s!r}.")
        return float(exptime_s), "argument"
    for key in ("EXPTIME", "EXPOSURE"):
        value = header.get(key)
        if isinstance(value, float) and np.isfinite(value) and value > 0:
            return value, f"header {key}"
    return 1.0, "assumed 1 s"


def _clean(
    ra: NDArray[np.float64], dec: NDArray[np.float64], photometry: _Photometry
) -> tuple[NDArray[np.bool_], dict[str, int]]:
    """Mask of usable rows and the number of rows dropped for each reason (first reason wins)."""
    mag, err = photometry.mag, photometry.mag_err
    measured = photometry.flux if photometry.flux is not None else mag
    lo, hi = MAG_LIMITS
    with np.errstate(invalid="ignore"):
        reasons = [
            ("non-finite", ~(np.isfinite(ra) & np.isfinite(dec) & np.isfinite(measured) & np.isfinite(err))),
            ("zero position", (ra == 0) & (dec == 0)),
            ("position out of range", (ra < 0) | (ra > 360) | (dec < -90) | (dec > 90)),
            ("non-positive flux", measured <= 0 if photometry.flux is not None else np.zeros(ra.shape, bool)),
            ("sentinel", (np.abs(mag) >= 90) | np.isclose(np.abs(err), SENTINEL)),
            ("absurd", (mag < lo) | (mag > hi) | (err <= 0) | (err > MAX_MAG_ERR)),
        ]
    keep = np.ones(ra.shape, dtype=bool)
    n_dropped: dict[str, int] = {}
    for reason, bad in reasons:
        hit = keep & bad
        if hit.any():
            n_dropped[reason] = int(hit.sum())
        keep &= ~hit
    return keep, n_dropped


def _require_enough(n_kept: int, n_input: int, n_dropped: dict[str, int], min_stars: int) -> None:
    if n_kept >= min_stars:
        return
    if not n_dropped:
        raise CatalogueError(
            f"the catalogue has only {n_input} rows, fewer than the {min_stars} stars a calibration "
            "needs; upload the catalogue of a deeper or wider image."
        )
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(n_dropped.items(), key=lambda item: -item[1]))
    raise CatalogueError(
        f"only {n_kept} of the {n_input} rows are usable (dropped: {why}), fewer than the {min_stars} "
        "stars a calibration needs; check the SExtractor run (astrometry, detection threshold, "
        "saturation) or upload a deeper catalogue."
    )
