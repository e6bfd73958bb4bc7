"""FITS catalogues: plain binary tables (ORAC-DR, BANZAI) and SExtractor FITS_LDAC.

A FITS_LDAC file holds pairs of ``LDAC_IMHEAD`` (one cell with the image header cards)
and ``LDAC_OBJECTS`` HDUs, one pair per chip; the objects of all pairs are read.
astropy reports several kinds of damage only as warnings; they are caught here and turned
into a refusal whenever table data are actually missing.
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
from astropy.io import fits

from shared.catalogue.model import CatalogueError, Columns, RawTable

IMAGE_KEYWORDS = (
    "FILTER", "EXPTIME", "EXPOSURE", "MJD-OBS", "DATE-OBS", "OBJECT", "TELESCOP", "INSTRUME", "L1ZP",
)


def read_fits(data: bytes, is_usable: Callable[[Columns], bool]) -> tuple[str, RawTable]:
    """("FITS" or "FITS_LDAC", columns) of the first usable table, or of all LDAC_OBJECTS HDUs.

    ``is_usable(columns)`` tells whether a table has the columns a calibration needs.
    """
    refusal = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=False) as hdus:
                file_format, raw = _read_hdus(hdus, is_usable, len(data))
        except CatalogueError as exc:
            refusal = exc
        except Exception as exc:  # astropy signals damage with OSError, TypeError, ValueError...
            raise _damaged(str(exc) or type(exc).__name__) from exc
    if any("multiple of 2880" in str(w.message) for w in caught):  # astropy skipped a cut-off HDU
        raise _damaged("the last header is incomplete") from refusal
    if refusal is not None:
        raise refusal
    return file_format, raw


def _damaged(reason: str) -> CatalogueError:
    reason = " ".join(reason.split()).split(". ")[0].split(", ")[0].rstrip(".")  # astropy's first clause
    return CatalogueError(
        f"the FITS file is damaged ({reason}): it was probably truncated or altered during "
        "transfer, so export the catalogue again and upload the complete file."
    )


def _read_hdus(hdus: fits.HDUList, is_usable: Callable[[Columns], bool], file_size: int) -> tuple[str, RawTable]:
    tables = [hdu for hdu in hdus if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU))]
    objects = [hdu for hdu in tables if (hdu.name or "").upper() == "LDAC_OBJECTS"]
    imheads = [hdu for hdu in tables if (hdu.name or "").upper() == "LDAC_IMHEAD"]
    if imheads and not objects:
        raise _damaged("an LDAC_IMHEAD without its LDAC_OBJECTS table")
    if objects:
        header = image_keywords(hdus[0].header)
        for hdu in imheads:
            header = {**image_keywords(_imhead_header(hdu)), **header}
        return "FITS_LDAC", _concatenate([_columns(hdu, file_size) for hdu in objects], header)
    if not tables and not hdus[0].header.get("NAXIS", 0):
        raise _damaged("it holds only a header, no table")
    if not tables:
        raise CatalogueError(
            "the FITS file contains no table (it looks like an image); upload the source "
            "catalogue written by SExtractor (FITS_LDAC or ASCII_HEAD) or a FITS binary table."
        )
    candidates = [(hdu, _columns(hdu, file_size)) for hdu in tables]
    hdu, columns = next(((h, c) for h, c in candidates if is_usable(c)), candidates[0])
    header = {**image_keywords(hdu.header), **image_keywords(hdus[0].header)}
    return "FITS", RawTable(columns, header, _n_rows(columns), {})


def _columns(hdu: fits.BinTableHDU | fits.TableHDU, file_size: int) -> Columns:
    """Numeric columns of a table HDU as float64, after checking its data are all in the file."""
    info = hdu.fileinfo()
    needed = hdu.header.get("NAXIS1", 0) * hdu.header.get("NAXIS2", 0) + hdu.header.get("PCOUNT", 0)
    if info is not None and info["datLoc"] + needed > file_size:
        name = hdu.name or "table"
        raise _damaged(f"the {name} data end after {file_size} of {info['datLoc'] + needed} bytes")
    columns: Columns = {}
    if hdu.data is None:
        return columns
    for name in hdu.columns.names:
        values = np.asarray(hdu.data[name])
        if values.dtype.kind in "biuf" and values.ndim in (1, 2):
            columns.setdefault(name.strip().upper(), values.astype(np.float64))
    return columns


def _n_rows(columns: Columns) -> int:
    return next((len(values) for values in columns.values()), 0)


def _concatenate(parts: list[Columns], header: dict[str, object]) -> RawTable:
    """One table from the LDAC_OBJECTS of all chips (columns present in every chip)."""
    shapes = {name: values.shape[1:] for name, values in parts[0].items()}
    names = [name for name in shapes if all(name in p and p[name].shape[1:] == shapes[name] for p in parts)]
    columns = {name: np.concatenate([part[name] for part in parts]) for name in names}
    n_input = sum(_n_rows(part) for part in parts)
    return RawTable(columns, header, n_input, {})


def _imhead_header(hdu: fits.BinTableHDU) -> fits.Header:
    """The image header stored as card text in the single cell of an LDAC_IMHEAD table."""
    if hdu.data is None or len(hdu.data) == 0:
        return fits.Header()
    cell = hdu.data[0][0]
    if isinstance(cell, (str, bytes)):
        text = cell.decode("ascii", "replace") if isinstance(cell, bytes) else cell
    else:  # with TDIM = (80, n) astropy returns the cards one per element, trailing blanks stripped
        text = "".join(str(card).ljust(80) for card in np.ravel(cell))
    try:
        return fits.Header.fromstring(text)
    except Exception:  # a header we cannot parse only costs us the image keywords
        return fits.Header()


def image_keywords(header: fits.Header) -> dict[str, object]:
    """FILTER, EXPTIME, MJD-OBS... as plain str/float values, for those present."""
    found: dict[str, object] = {}
    for key in IMAGE_KEYWORDS:
        try:
            value = header.get(key)
        except Exception:  # an unparsable card
            continue
        if isinstance(value, (bool, np.bool_)) or value is None:
            continue
        if isinstance(value, (int, float, np.integer, np.floating)):
            found[key] = float(value)
        elif isinstance(value, str) and value.strip():
            found[key] = value.strip()
    return found
