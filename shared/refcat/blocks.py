"""Storage: the block documents of ``refcat_blocks``, one per (survey, HEALPix pixel, block)::

    {survey: "APASS", hp: 412345, import_id: "…", seq: 3, flush: 0, n: 812,
     cols: ["pmra", "pmdec", "mag_V", "err_V", ...], data: <bytes>}

``hp`` is the nested HEALPix pixel at :data:`shared.refcat.healpix.NSIDE` (see there for the choice).
``data`` packs ra and dec as little-endian float64 and the other columns (``cols``) as float32, NaN
where missing (``encoding="packed"``, the default; see :func:`encode_columns`). Blocks written by
earlier versions (one float64 bytes field per column, ``encoding="binary"``) or as lists of numbers
with null for NaN (``encoding="list"``, readable in any shell) are read as well, block by block.
``pmra``/``pmdec`` (mas/yr) are there for surveys with proper motions.

This module turns columns of stars into block documents and back; it never talks to the database
(:class:`shared.refcat.store.RefcatStore` reads and writes the documents).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from bson import Binary

from .healpix import pixels_of
from .presets import StarColumns

BLOCKS = "refcat_blocks"
#: the key under which a block kept in memory carries its decoded columns (never stored)
DECODED = "_decoded"

#: Largest number of stars in one block document (~1 MB of BSON with 10 bands); bounds document size
#: in crowded pixels while keeping a typical pixel in one or two documents.
BLOCK_ROWS = 5000
#: Magnitudes and errors are stored to 1e-5 mag; positions and proper motions are stored unrounded.
MAG_DECIMALS = 5
#: How block columns are written by default: "packed", "binary" or "list" (see :func:`encode_columns`).
BLOCK_ENCODING = "packed"
#: ``flush`` of the blocks an import's compaction wrote (raw blocks count their flushes from 0).
COMPACTED_FLUSH = -1
#: The encodings a store can write.
ENCODINGS = ("list", "binary", "packed")


def _nullable(values: np.ndarray, decimals: int | None = None) -> list:
    arr = np.asarray(values, dtype=float)
    if decimals is not None:
        arr = np.round(arr, decimals)
    bad = ~np.isfinite(arr)
    if not bad.any():
        return arr.tolist()
    out = arr.astype(object)
    out[bad] = None
    return out.tolist()


def _binary(values: np.ndarray, decimals: int | None = None) -> Binary:
    arr = np.asarray(values, dtype="<f8")
    if decimals is not None:
        arr = np.round(arr, decimals)
    return Binary(arr.tobytes())


def _floats(values, n: int | None = None) -> np.ndarray:
    """A stored column as float64: absent -> all NaN, bytes -> little-endian float64, list -> None as NaN."""
    if values is None:
        return np.full(n or 0, np.nan)
    if isinstance(values, (bytes, bytearray, memoryview)):
        return np.frombuffer(values, dtype="<f8")
    return np.array(values, dtype=float)


_POSITION_COLUMNS = ("ra", "dec")


def encode_columns(doc: dict, columns: Mapping[str, np.ndarray], encoding: str) -> dict:
    """Add the columns of one block to ``doc`` in the store's encoding.

    ``packed``: one binary field ``data`` = ra, dec as little-endian float64, then every other column
    (listed in ``cols``) as little-endian float32 (magnitudes are stored to 1e-5 mag, proper motions to
    far better than 1 microarcsec/yr: float32 loses nothing that matters); one field per block is what
    makes a block cheap to serve (on nx-27017 the cost of a query is mostly per document and per field).
    ``binary``: one float64 bytes field per column. ``list``: one list per column, NaN as null.
    """
    if encoding == "packed":
        names = [c for c in columns if c not in _POSITION_COLUMNS]
        parts = [np.asarray(columns["ra"], dtype="<f8").tobytes(), np.asarray(columns["dec"], dtype="<f8").tobytes()]
        parts += [np.asarray(columns[c], dtype="<f4").tobytes() for c in names]
        doc["cols"] = names
        doc["data"] = Binary(b"".join(parts))
        return doc
    encode = _binary if encoding == "binary" else _nullable
    for name, values in columns.items():
        doc[name] = encode(values)
    return doc


def decode_columns(doc: dict) -> dict[str, np.ndarray]:
    """Every column of a stored block as float64 arrays, whatever its encoding."""
    n = int(doc["n"])
    if "data" in doc:
        buf = doc["data"]
        out = {"ra": np.frombuffer(buf, dtype="<f8", count=n, offset=0),
               "dec": np.frombuffer(buf, dtype="<f8", count=n, offset=8 * n)}
        names = list(doc.get("cols") or [])
        if names:
            rest = np.frombuffer(buf, dtype="<f4", count=n * len(names), offset=16 * n).reshape(len(names), n)
            rest = rest.astype(float)
            for i, name in enumerate(names):
                # float32 -> float64 and back to the stored 1e-5 mag: 13.482, not 13.482000350952148
                out[name] = np.round(rest[i], MAG_DECIMALS) if name[:4] in ("mag_", "err_") else rest[i]
        return out
    skip = {"_id", "survey", "hp", "import_id", "seq", "flush", "n"}
    return {k: _floats(v, n) for k, v in doc.items() if k not in skip}


def decode_positions(doc: dict) -> tuple[np.ndarray, np.ndarray]:
    """ra and dec of a stored block, whatever its encoding (without decoding the other columns)."""
    n = int(doc["n"])
    if "data" in doc:
        buf = doc["data"]
        return (np.frombuffer(buf, dtype="<f8", count=n, offset=0),
                np.frombuffer(buf, dtype="<f8", count=n, offset=8 * n))
    return _floats(doc.get("ra"), n), _floats(doc.get("dec"), n)


def block_slice(columns: Mapping[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    """Rows lo..hi of the columns, leaving out magnitude/error pairs and proper motions that are all NaN there."""
    out: dict[str, np.ndarray] = {}
    for key, values in columns.items():
        part = values[lo:hi]
        if key.startswith("err_"):
            continue
        if key.startswith("mag_"):
            if np.isfinite(part).any():
                out[key] = part
                out["err_" + key[4:]] = columns["err_" + key[4:]][lo:hi]
        elif key in ("pmra", "pmdec"):
            if (np.isfinite(values[lo:hi]).any()
                    or np.isfinite(columns["pmdec" if key == "pmra" else "pmra"][lo:hi]).any()):
                out[key] = part
        else:
            out[key] = part
    return out


def block_documents(survey: str, import_id: str, seq0: int, chunk: StarColumns, *, block_rows: int = BLOCK_ROWS,
                    encoding: str = BLOCK_ENCODING, flush: int = 0) -> tuple[list[dict], int, np.ndarray]:
    """Group stars by pixel into block documents of at most ``block_rows`` stars, numbered from
    ``seq0`` (CPU work: callers run it in a worker thread); also the number of stars kept (those with
    a valid position) and the pixels they fill. Magnitudes and errors are rounded to
    :data:`MAG_DECIMALS`."""
    ra_in = np.asarray(chunk.ra, dtype=float)
    dec_in = np.asarray(chunk.dec, dtype=float)
    good = np.isfinite(ra_in) & np.isfinite(dec_in) & (np.abs(dec_in) <= 90.0)
    if not good.all():
        chunk = chunk.take(good)
        ra_in, dec_in = ra_in[good], dec_in[good]
    ra_in = np.mod(ra_in, 360.0)
    hp = pixels_of(ra_in, dec_in)
    order = np.argsort(hp, kind="stable")
    hp_sorted = hp[order]
    starts = np.flatnonzero(np.r_[True, hp_sorted[1:] != hp_sorted[:-1]]) if hp_sorted.size else np.zeros(0, int)
    ends = np.r_[starts[1:], hp_sorted.size]
    columns: dict[str, np.ndarray] = {"ra": ra_in[order], "dec": dec_in[order]}
    if chunk.pmra is not None and chunk.pmdec is not None:
        columns["pmra"] = np.asarray(chunk.pmra, dtype=float)[order]
        columns["pmdec"] = np.asarray(chunk.pmdec, dtype=float)[order]
    for band, m in chunk.mags.items():
        columns[f"mag_{band}"] = np.round(np.asarray(m, dtype=float)[order], MAG_DECIMALS)
        e = chunk.errs.get(band)
        columns[f"err_{band}"] = np.round(
            np.asarray(e if e is not None else np.full(len(m), np.nan), dtype=float)[order], MAG_DECIMALS)
    docs = []
    seq = seq0
    # an empty chunk has no start but one end (0): nothing pairs up and no block is written
    for start, end in zip(starts, ends, strict=False):
        for lo in range(int(start), int(end), block_rows):
            hi = min(lo + block_rows, int(end))
            doc = {"survey": survey, "hp": int(hp_sorted[lo]), "import_id": import_id, "seq": seq,
                   "flush": flush, "n": hi - lo}
            docs.append(encode_columns(doc, block_slice(columns, lo, hi), encoding))
            seq += 1
    return docs, len(chunk), np.unique(hp_sorted)


__all__ = ["BLOCKS", "BLOCK_ENCODING", "BLOCK_ROWS", "COMPACTED_FLUSH", "ENCODINGS", "MAG_DECIMALS", "block_documents",
           "block_slice", "DECODED", "decode_columns", "decode_positions", "encode_columns"]
