"""SExtractor ASCII_HEAD catalogues: numbered ``#   N NAME  description [unit]`` lines, then rows.

A vector column (``MAG_APER`` with several apertures) shows up as a jump in the header
numbering: ``#   3 MAG_APER`` followed by ``#  10 MAGERR_APER`` means MAG_APER fills columns
3 to 9.  The last header entry extends to the end of the row.  Values are separated by any
run of spaces or tabs.

astropy's ``format="sextractor"`` reader is not used: it refuses tab-separated rows and one
short (e.g. truncated) line makes it reject the whole file.
"""
from __future__ import annotations

import itertools
import re
from collections import Counter

import numpy as np
from numpy.typing import NDArray

from shared.catalogue.model import CatalogueError, Columns, RawTable

_HEADER_LINE = re.compile(r"^#\s*(\d+)\s+([A-Za-z_][A-Za-z0-9_.\-()]*)")


def read_ascii_head(data: bytes) -> RawTable:
    """Columns of an ASCII_HEAD catalogue, vector columns as (n, k) arrays."""
    lines = _decode(data).splitlines()
    entries = _header_entries(lines)
    rows = [line.split() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise CatalogueError(
            "the catalogue has a SExtractor header but no data rows; check that SExtractor "
            "detected sources in the image and upload the complete file."
        )
    n_values = _row_length(rows, last_number=entries[-1][0])
    n_dropped: Counter[str] = Counter()
    table = _to_floats([row for row in rows if len(row) == n_values], n_dropped)
    n_dropped["malformed line"] += sum(1 for row in rows if len(row) != n_values)
    return RawTable(
        columns=_split_columns(table, entries, n_values),
        header={},
        n_input=len(rows),
        n_dropped={reason: n for reason, n in n_dropped.items() if n},
    )


def _decode(data: bytes) -> str:
    if b"\x00" in data[:65536]:
        raise _not_a_catalogue()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # a hand-edited description; the numbers are ASCII anyway


def _not_a_catalogue() -> CatalogueError:
    return CatalogueError(
        "the file is neither a FITS table nor a SExtractor ASCII_HEAD text catalogue; "
        "upload the catalogue written by SExtractor with CATALOG_TYPE FITS_LDAC or ASCII_HEAD."
    )


def _header_entries(lines: list[str]) -> list[tuple[int, str]]:
    """(column number, upper-case name) pairs of the header, in column order."""
    entries = []
    for line in lines:
        match = _HEADER_LINE.match(line.strip())
        if match:
            entries.append((int(match.group(1)), match.group(2).upper()))
    if not entries:
        raise CatalogueError(
            "the text file has no SExtractor column header (lines like '#   1 MAG_AUTO'); "
            "run SExtractor with CATALOG_TYPE ASCII_HEAD (or FITS_LDAC) and upload that catalogue."
        )
    numbers = [number for number, _ in entries]
    if numbers[0] != 1 or any(b <= a for a, b in itertools.pairwise(numbers)):
        raise CatalogueError(
            "the SExtractor header numbering is inconsistent (it must start at 1 and increase); "
            "upload the catalogue exactly as SExtractor wrote it."
        )
    return entries


def _row_length(rows: list[list[str]], last_number: int) -> int:
    """The number of values most rows have; at least the last header column number."""
    n_values, _ = Counter(len(row) for row in rows).most_common(1)[0]
    if n_values < last_number:
        raise CatalogueError(
            f"the header describes at least {last_number} columns but the rows hold only "
            f"{n_values} values; the header does not belong to these data, so upload the "
            "catalogue exactly as SExtractor wrote it."
        )
    return n_values


def _to_floats(rows: list[list[str]], n_dropped: Counter[str]) -> NDArray[np.float64]:
    """Rows as a float64 matrix; a row with a non-numeric value is dropped and counted."""
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), -1)
    except ValueError:
        pass
    kept = []
    for row in rows:
        try:
            kept.append([float(value) for value in row])
        except ValueError:
            n_dropped["non-numeric value"] += 1
    width = len(rows[0]) if rows else 0
    return np.array(kept, dtype=np.float64).reshape(len(kept), width)


def _split_columns(
    table: NDArray[np.float64], entries: list[tuple[int, str]], n_values: int
) -> Columns:
    ends = [number for number, _ in entries[1:]] + [n_values + 1]
    columns: Columns = {}
    for (start, name), end in zip(entries, ends, strict=True):
        block = table[:, start - 1 : end - 1]
        columns.setdefault(name, block[:, 0] if block.shape[1] == 1 else block)
    return columns
