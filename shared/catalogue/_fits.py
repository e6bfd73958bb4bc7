"""FITS catalogues: plain binary tables (ORAC-DR, BANZAI) and SExtractor FITS_LDAC.

A FITS_LDAC file holds pairs of ``LDAC_IMHEAD`` (one cell with the image header cards)
and ``LDAC_OBJECTS`` HDUs, one pair per chip; the objects of all pairs are read.
astropy reports several kinds of damage only as warnings; they are caught here and turned
into a refusal whenever table data are actually missing.

astropy parses the headers and checks the file's structure; the rows of a binary table whose
columns are all plain numbers or text (TFORM B, I, J, K, E, D or A, no scaling, no heap, at most one
dimension) are then read straight from the bytes with numpy (``_plain_columns``), and of an
``LDAC_IMHEAD`` only the cards of ``IMAGE_KEYWORDS`` are parsed: the same values as astropy's
``hdu.data`` and ``Header``, in about a tenth of the time for a 29-column LDAC table. Any other table
goes through ``hdu.data``.
"""
from __future__ import annotations

import io
import re
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
                file_format, raw = _read_hdus(hdus, is_usable, data)
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


def _read_hdus(hdus: fits.HDUList, is_usable: Callable[[Columns], bool], data: bytes) -> tuple[str, RawTable]:
    file_size = len(data)
    tables = [hdu for hdu in hdus if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU))]
    objects = [hdu for hdu in tables if (hdu.name or "").upper() == "LDAC_OBJECTS"]
    imheads = [hdu for hdu in tables if (hdu.name or "").upper() == "LDAC_IMHEAD"]
    if imheads and not objects:
        raise _damaged("an LDAC_IMHEAD without its LDAC_OBJECTS table")
    if objects:
        header = image_keywords(hdus[0].header)
        for hdu in imheads:
            header = {**_imhead_keywords(hdu, data), **header}
        return "FITS_LDAC", _concatenate([_columns(hdu, file_size, data) for hdu in objects], header)
    if not tables and not hdus[0].header.get("NAXIS", 0):
        raise _damaged("it holds only a header, no table")
    if not tables:
        raise CatalogueError(
            "the FITS file contains no table (it looks like an image); upload the source "
            "catalogue written by SExtractor (FITS_LDAC or ASCII_HEAD) or a FITS binary table."
        )
    candidates = [(hdu, _columns(hdu, file_size, data)) for hdu in tables]
    hdu, columns = next(((h, c) for h, c in candidates if is_usable(c)), candidates[0])
    header = {**image_keywords(hdu.header), **image_keywords(hdus[0].header)}
    return "FITS", RawTable(columns, header, _n_rows(columns), {})


def _columns(hdu: fits.BinTableHDU | fits.TableHDU, file_size: int, data: bytes | None = None) -> Columns:
    """Numeric columns of a table HDU as float64, after checking its data are all in the file."""
    info = hdu.fileinfo()
    needed = hdu.header.get("NAXIS1", 0) * hdu.header.get("NAXIS2", 0) + hdu.header.get("PCOUNT", 0)
    if info is not None and info["datLoc"] + needed > file_size:
        name = hdu.name or "table"
        raise _damaged(f"the {name} data end after {file_size} of {info['datLoc'] + needed} bytes")
    if data is not None and info is not None and isinstance(hdu, fits.BinTableHDU):
        plain = _plain_columns(hdu.header, data, info["datLoc"])
        if plain is not None:
            return plain
    columns: Columns = {}
    if hdu.data is None:
        return columns
    for name in hdu.columns.names:
        values = np.asarray(hdu.data[name])
        if values.dtype.kind in "biuf" and values.ndim in (1, 2):
            columns.setdefault(name.strip().upper(), values.astype(np.float64))
    return columns


#: TFORM letters read straight from the bytes: numpy's big-endian type of one element ("A": text, skipped).
_PLAIN_TYPES = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8", "A": "S1"}
_TFORM = re.compile(r"^\s*(\d*)([A-Z])")
_SCALING = ("TSCAL", "TZERO", "TDIM")


def _plain_columns(header: fits.Header, data: bytes, offset: int) -> Columns | None:
    """The numeric columns of a plain binary table as float64, read with numpy from ``data`` at
    ``offset`` (the HDU's data); None when the table has anything else (scaled or multi-dimensional
    columns, bits, logicals, complex numbers, a heap, no rows): ``hdu.data`` reads those."""
    n_rows, width, n_fields = header.get("NAXIS2"), header.get("NAXIS1"), header.get("TFIELDS")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (n_rows, width, n_fields)):
        return None
    if header.get("PCOUNT", 0) != 0 or header.get("GCOUNT", 1) != 1:
        return None
    names, formats, offsets, numeric = [], [], [], []
    position = 0
    for i in range(1, n_fields + 1):
        name, tform = header.get(f"TTYPE{i}"), header.get(f"TFORM{i}")
        if not isinstance(name, str) or not isinstance(tform, str) or any(f"{k}{i}" in header for k in _SCALING):
            return None
        found = _TFORM.match(tform)
        if found is None or found.group(2) not in _PLAIN_TYPES or tform[found.end():].strip():
            return None
        repeat = int(found.group(1) or 1)
        if repeat == 0:
            return None
        kind = _PLAIN_TYPES[found.group(2)]
        names.append(f"f{i}")
        formats.append(f"S{repeat}" if kind == "S1" else (kind if repeat == 1 else f"({repeat},){kind}"))
        offsets.append(position)
        numeric.append(None if kind == "S1" else name.strip().upper())
        position += np.dtype(formats[-1]).itemsize
    if position != width or offset + width * n_rows > len(data):
        return None
    rows = np.frombuffer(data, dtype=np.dtype({"names": names, "formats": formats, "offsets": offsets,
                                               "itemsize": width}), count=n_rows, offset=offset)
    columns: Columns = {}
    for field_name, name in zip(names, numeric, strict=True):
        if name is not None:
            columns.setdefault(name, rows[field_name].astype(np.float64))
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


def _imhead_keywords(hdu: fits.BinTableHDU, data: bytes) -> dict[str, object]:
    """``image_keywords`` of the image header in an ``LDAC_IMHEAD`` cell: when the cell is one text column,
    only the cards of those keywords are parsed (the first of each, up to END); else the whole header."""
    info, header = hdu.fileinfo(), hdu.header
    width, tform = header.get("NAXIS1"), header.get("TFORM1")
    found = _TFORM.match(tform) if isinstance(tform, str) else None
    if (info is None or header.get("TFIELDS") != 1 or not isinstance(width, int) or width <= 0
            or header.get("NAXIS2", 0) < 1 or found is None or found.group(2) != "A"
            or int(found.group(1) or 1) != width or info["datLoc"] + width > len(data)):
        return image_keywords(_imhead_header(hdu))
    text = data[info["datLoc"]:info["datLoc"] + width].decode("ascii", "replace")
    values: dict[str, object] = {}
    for start in range(0, len(text), 80):
        card = text[start:start + 80].rstrip("\x00")  # a card shorter than 80 is padded with NULs
        keyword = card[:8].rstrip()
        if keyword == "END":
            break
        if keyword in IMAGE_KEYWORDS and keyword not in values and card[8:10] == "= ":
            try:
                values[keyword] = fits.Card.fromstring(card.ljust(80)).value
            except Exception:  # an unparsable card costs only its keyword, as in the whole header
                continue
    return _keyword_values(values)


def image_keywords(header: fits.Header) -> dict[str, object]:
    """FILTER, EXPTIME, MJD-OBS... as plain str/float values, for those present."""
    values: dict[str, object] = {}
    for key in IMAGE_KEYWORDS:
        try:
            values[key] = header.get(key)
        except Exception:  # an unparsable card
            continue
    return _keyword_values(values)


def _keyword_values(values: dict[str, object]) -> dict[str, object]:
    found: dict[str, object] = {}
    for key in IMAGE_KEYWORDS:
        value = values.get(key)
        if isinstance(value, (bool, np.bool_)) or value is None:
            continue
        if isinstance(value, (int, float, np.integer, np.floating)):
            found[key] = float(value)
        elif isinstance(value, str) and value.strip():
            found[key] = value.strip()
    return found
