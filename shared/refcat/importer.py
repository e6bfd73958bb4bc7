"""Fill the reference-catalogue store from a file (CSV, ECSV, FITS / FITS_LDAC, VOTable, Parquet).

Reading is done with astropy and, where the format allows, in chunks of bounded size: CSV/TSV through
astropy's fast reader in chunk-generator mode, FITS through a memory-mapped table sliced chunk by chunk
(for FITS_LDAC files the ``LDAC_OBJECTS`` extension is read). ECSV and VOTable files are parsed whole
by astropy and then imported chunk by chunk. Every chunk is mapped through a preset or an explicit
mapping (:mod:`shared.refcat.presets`) and written by :class:`shared.refcat.store.RefcatStore`; the
column mapping is checked on the first chunk, before anything is stored.
"""
from __future__ import annotations

import asyncio
import contextlib
import warnings
from pathlib import Path
from typing import Iterator, Mapping

from astropy.table import Table
from astropy.utils.exceptions import AstropyWarning

from .presets import ColumnMapping, Preset, RefcatError, StarColumns, choose_preset
from .store import CHUNK_ROWS, RefcatStore, SurveyInfo, _restrict_bands, canonical_survey

#: Bytes of CSV text handed to astropy's fast reader per chunk (roughly CHUNK_ROWS VizieR rows).
CSV_BYTES_PER_ROW = 160

FORMATS = ("csv", "tab", "ecsv", "fits", "votable", "parquet")
_SUFFIX_FORMATS = {
    ".csv": "csv", ".tsv": "tab", ".tab": "tab", ".ecsv": "ecsv",
    ".fits": "fits", ".fit": "fits", ".fts": "fits", ".ldac": "fits",
    ".vot": "votable", ".votable": "votable", ".xml": "votable", ".parquet": "parquet", ".pq": "parquet",
}


@contextlib.contextmanager
def _quiet():
    """astropy warns about harmless quirks of survey files (LDAC TDISP codes, VizieR units, VOTable
    dialects); an import must not fail or flood the terminal because of them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        yield


def guess_format(path: Path) -> str:
    """The table format of ``path``: from its first bytes when they tell, else from the suffix, else CSV."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except FileNotFoundError:
        raise RefcatError(f"file {path} does not exist") from None
    except OSError as exc:
        raise RefcatError(f"cannot open {path}: {exc.strerror or exc}") from None
    if head.startswith(b"SIMPLE  ="):
        return "fits"
    if head.startswith(b"# %ECSV"):
        return "ecsv"
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.lstrip().lower()
    if text.startswith(b"<?xml") or text.startswith(b"<votable"):
        return "votable"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".xz"):
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffixes[-1]]
    return "csv"


def read_chunks(path: str | Path, *, format: str | None = None,
                chunk_rows: int = CHUNK_ROWS) -> tuple[Iterator[Table], int | None]:
    """An iterator of astropy Tables of at most about ``chunk_rows`` rows, and the total row count when
    the format tells it up front (None for CSV). Errors are :class:`RefcatError` sentences."""
    path = Path(path)
    fmt = (format or guess_format(path)).lower()
    if fmt not in FORMATS:
        raise RefcatError(f"unknown table format {format!r}; use one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise RefcatError(f"file {path} does not exist")
    try:
        with _quiet():
            if fmt in ("csv", "tab"):
                return _csv_chunks(path, fmt, chunk_rows), None
            if fmt == "fits":
                table = _read_fits_table(path)
            elif fmt == "parquet":
                try:
                    import pyarrow  # noqa: F401
                except ImportError:
                    raise RefcatError("reading Parquet needs the pyarrow package, which is not installed") from None
                table = Table.read(path, format="parquet")
            else:
                table = Table.read(path, format="ascii.ecsv" if fmt == "ecsv" else "votable")
    except RefcatError:
        raise
    except Exception as exc:  # astropy raises many kinds of errors for unreadable files
        raise RefcatError(f"cannot read {path.name} as {fmt.upper()}: {_reason(exc)}") from None
    return _slices(table, chunk_rows), len(table)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _read_fits_table(path: Path) -> Table:
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        names = [h.name.upper() for h in hdul]
        if "LDAC_OBJECTS" in names:
            index = names.index("LDAC_OBJECTS")
        else:
            candidates = [i for i, h in enumerate(hdul)
                          if isinstance(h, (fits.BinTableHDU, fits.TableHDU)) and h.header.get("NAXIS2", 0) > 0]
            if not candidates:
                raise RefcatError(f"{path.name} holds no table with rows")
            index = candidates[0]
    return Table.read(path, hdu=index, memmap=True)


def _slices(table: Table, chunk_rows: int) -> Iterator[Table]:
    for start in range(0, len(table), chunk_rows):
        yield table[start:start + chunk_rows]


def _csv_chunks(path: Path, fmt: str, chunk_rows: int) -> Iterator[Table]:
    from astropy.io import ascii

    chunk_bytes = max(1_000_000, chunk_rows * CSV_BYTES_PER_ROW)
    reader = ascii.read(
        str(path), format="csv" if fmt == "csv" else "tab", guess=False,
        fast_reader={"chunk_size": chunk_bytes, "chunk_generator": True},
    )
    while True:
        try:
            with _quiet():
                chunk = next(reader)
        except StopIteration:
            return
        except Exception as exc:
            raise RefcatError(f"cannot read {path.name} as {fmt.upper()}: {_reason(exc)}") from None
        yield chunk


def resolve_preset(*, survey: str, preset: str | Preset | None = None,
                   columns: str | Mapping[str, str] | None = None, version: str | None = None) -> Preset:
    """The preset an import uses (see :func:`shared.refcat.presets.choose_preset`)."""
    if isinstance(preset, Preset):
        return preset
    return choose_preset(survey=survey, preset=preset, columns=columns, version=version)


async def import_file(
    store: RefcatStore,
    path: str | Path,
    *,
    survey: str,
    preset: str | Preset | None = None,
    columns: str | Mapping[str, str] | None = None,
    version: str | None = None,
    description: str | None = None,
    synthetic: bool | None = None,
    replace: bool = False,
    format: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = False,
) -> int:
    """Import one file into ``store``; returns the number of stars stored.

    ``survey`` names the survey (and chooses the preset when ``preset`` and ``columns`` are not given);
    ``columns`` is an explicit mapping ``"ra=RAJ2000,dec=DEJ2000,V=Vmag,V_err=e_Vmag"``; ``synthetic``
    defaults to True when the version contains "synthetic". Rows without a position are dropped.
    """
    path = Path(path)
    chosen = resolve_preset(survey=survey, preset=preset, columns=columns, version=version)
    chunks, total = await asyncio.to_thread(read_chunks, path, format=format, chunk_rows=chunk_rows)
    first = await asyncio.to_thread(next, chunks, None)
    if first is None:
        raise RefcatError(f"{path.name} holds no rows")
    mapping = chosen.resolve(first.colnames)
    info = SurveyInfo.from_preset(chosen, version=version, description=description, synthetic=synthetic,
                                  survey=canonical_survey(survey))
    info = _restrict_bands(info, mapping)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit=" stars", unit_scale=True, desc=f"{info.name} {path.name}")

    def mapped() -> Iterator[StarColumns]:
        yield _apply(mapping, first)
        for chunk in chunks:
            yield _apply(mapping, chunk)

    try:
        return await store.import_chunks(info, mapped(), replace=replace, source_name=path.name,
                                         progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()


def _apply(mapping: ColumnMapping, table: Table) -> StarColumns:
    try:
        with _quiet():
            return mapping.apply(table)
    except KeyError as exc:
        raise RefcatError(f"a chunk of the file lacks column {exc.args[0]!r}") from None


async def import_simulated_field(store: RefcatStore, field, *, version: str | None = None,
                                 replace: bool = True) -> int:
    """Store the reference catalogue of a :class:`shared.simfield.SimulatedField` as survey "APASS",
    labelled synthetic (version "synthetic-demo-1" unless given, description saying it is simulated)."""
    from shared.simfield import SYNTHETIC_DESCRIPTION, SYNTHETIC_VERSION

    return await store.import_table(
        field.reference, "APASS", survey="APASS", version=version or SYNTHETIC_VERSION,
        description=SYNTHETIC_DESCRIPTION, synthetic=True, replace=replace, source_name="shared.simfield",
    )


__all__ = ["FORMATS", "guess_format", "import_file", "import_simulated_field", "read_chunks", "resolve_preset"]
