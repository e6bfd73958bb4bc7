"""Fill the reference-catalogue store from files: CSV/TSV, ECSV, FITS / FITS_LDAC, VOTable, Parquet (a
file or a folder of files) and HATS catalogues (HEALPix-partitioned Parquet, the hats/lsdb ecosystem).

Streaming, so memory stays bounded whatever the file size:

* CSV/TSV through astropy's fast reader in chunk-generator mode; ECSV the same way after its YAML
  header (its data part is plain delimited text);
* FITS through a memory-mapped table sliced chunk by chunk (``LDAC_OBJECTS`` for FITS_LDAC files);
* Parquet and HATS through pyarrow, batch by batch, reading only the mapped columns; a HATS
  catalogue (a folder with ``hats.properties``, or a collection of them) is opened with ``hats``,
  which lists its partitions;
* VOTable is parsed whole by astropy (archive answers, small); its FIELD UCDs allow a mapping by UCD.

Every chunk is mapped through a preset, an explicit mapping, or the UCDs (:mod:`shared.refcat.presets`)
and written through :class:`shared.refcat.store.RefcatStore` (:mod:`shared.refcat.import_session`); the
mapping is checked before anything is stored. Imports are journaled in the survey record (file name,
size, modification time, chunk size, chunks stored): when an import stops (crash, Ctrl-C, a full disk),
running the same command again continues after the last stored chunk instead of starting over.
"""
from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table
from astropy.utils.exceptions import AstropyWarning

from .import_session import CHUNK_ROWS
from .presets import (
    ColumnMapping,
    Preset,
    RefcatError,
    StarColumns,
    choose_preset,
    find_preset,
    preset_from_ucds,
    survey_and_version,
    table_ucds,
)
from .records import SurveyInfo, canonical_survey, restrict_bands
from .store import RefcatStore
from .surveys import DEMO_SURVEY

#: Bytes of CSV text handed to astropy's fast reader per chunk (roughly CHUNK_ROWS VizieR rows).
CSV_BYTES_PER_ROW = 160

FORMATS = ("csv", "tab", "ecsv", "fits", "votable", "parquet", "hats")
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


def _is_hats(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in
                                 ("hats.properties", "collection.properties", "properties", "partition_info.csv"))


def guess_format(path: Path) -> str:
    """The table format of ``path``: a folder is HATS or Parquet; for a file its first bytes when they
    tell, else its suffix, else CSV."""
    path = Path(path)
    if path.is_dir():
        return "hats" if _is_hats(path) else "parquet"
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


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


# ------------------------------------------------------------------------------------------ sources


@dataclass
class TableSource:
    """A table on disk read chunk by chunk. ``chunks(start, columns)`` yields astropy Tables of about
    ``chunk_rows`` rows from chunk number ``start`` on (the same numbering on every run, which is what
    the resume journal counts); ``columns`` (when not None) limits what is read where the format allows."""

    path: Path
    format: str
    chunk_rows: int
    total: int | None = None
    names: list[str] | None = None
    ucds: list[tuple[str, str]] | None = None
    _whole: Table | None = None
    _files: list[Path] | None = None

    @property
    def key(self) -> dict:
        """What identifies the file for the journal: name, format, size, modification time, chunk size."""
        files = self._files or [self.path]
        stats = [f.stat() for f in files]
        return {"file": str(self.path.name), "format": self.format, "size": int(sum(s.st_size for s in stats)),
                "mtime_ns": int(max(s.st_mtime_ns for s in stats)), "chunk_rows": int(self.chunk_rows),
                "files": len(files)}

    def chunks(self, start: int = 0, columns: Sequence[str] | None = None) -> Iterator[Table]:
        fmt = self.format
        if fmt in ("csv", "tab", "ecsv"):
            return _skip(_delimited_chunks(self.path, fmt, self.chunk_rows), start)
        if self._whole is not None:
            return _slices(self._whole, self.chunk_rows, start)
        if fmt == "fits":
            return _slices(_read_fits_table(self.path), self.chunk_rows, start)
        if fmt in ("parquet", "hats"):
            return _parquet_chunks(self._files or [self.path], self.chunk_rows, start, columns)
        raise RefcatError(f"unknown table format {fmt!r}")

    def colnames(self) -> list[str]:
        if self.names is None:
            first = next(self.chunks(0), None)
            if first is None:
                raise RefcatError(f"{self.path.name} holds no rows")
            self.names = list(first.colnames)
            if self.ucds is None:
                self.ucds = table_ucds(first)
        return self.names


def open_source(path: str | Path, *, format: str | None = None, chunk_rows: int = CHUNK_ROWS) -> TableSource:
    """A :class:`TableSource` for ``path``; errors are :class:`RefcatError` sentences."""
    path = Path(path)
    if not path.exists():
        raise RefcatError(f"file {path} does not exist")
    fmt = (format or guess_format(path)).lower()
    if fmt not in FORMATS:
        raise RefcatError(f"unknown table format {format!r}; use one of {', '.join(FORMATS)}")
    if path.is_dir() and fmt not in ("parquet", "hats"):
        raise RefcatError(f"{path} is a folder: only Parquet folders and HATS catalogues can be imported as folders")
    try:
        with _quiet():
            if fmt in ("csv", "tab", "ecsv"):
                return TableSource(path, fmt, chunk_rows)
            if fmt == "fits":
                table = _read_fits_table(path)
                return TableSource(path, fmt, chunk_rows, total=len(table), names=list(table.colnames),
                                   ucds=[(n, "") for n in table.colnames])
            if fmt == "votable":
                table = Table.read(path, format="votable")
                return TableSource(path, fmt, chunk_rows, total=len(table), names=list(table.colnames),
                                   ucds=table_ucds(table), _whole=table)
            if fmt == "hats":
                return _hats_source(path, chunk_rows)
            return _parquet_source(path, chunk_rows)
    except RefcatError:
        raise
    except Exception as exc:  # the readers raise many kinds of errors for unreadable files
        raise RefcatError(f"cannot read {path.name} as {fmt.upper()}: {_reason(exc)}") from None


def read_chunks(path: str | Path, *, format: str | None = None,
                chunk_rows: int = CHUNK_ROWS) -> tuple[Iterator[Table], int | None]:
    """An iterator of astropy Tables of at most about ``chunk_rows`` rows, and the total row count when
    the format tells it up front (None for CSV/ECSV). Errors are :class:`RefcatError` sentences."""
    source = open_source(path, format=format, chunk_rows=chunk_rows)
    return source.chunks(0), source.total


def _skip(iterator: Iterator[Table], n: int) -> Iterator[Table]:
    for _ in range(n):
        if next(iterator, None) is None:
            return iter(())
    return iterator


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
    with _quiet():
        return Table.read(path, hdu=index, memmap=True)


def _slices(table: Table, chunk_rows: int, start: int = 0) -> Iterator[Table]:
    for first in range(start * chunk_rows, len(table), chunk_rows):
        yield table[first:first + chunk_rows]


def _ecsv_delimiter(path: Path) -> str:
    """The delimiter an ECSV header declares (space unless ``delimiter: ','``)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            text = line[1:].strip()
            if text.startswith("delimiter:"):
                value = text.split(":", 1)[1].strip().strip("'\"")
                return "," if value == "," else " "
    return " "


def _delimited_chunks(path: Path, fmt: str, chunk_rows: int) -> Iterator[Table]:
    from astropy.io import ascii

    chunk_bytes = max(1_000_000, chunk_rows * CSV_BYTES_PER_ROW)
    options = {"guess": False, "fast_reader": {"chunk_size": chunk_bytes, "chunk_generator": True}}
    if fmt == "ecsv":
        # ECSV = YAML header in '#' comment lines + plain delimited text: streamed by the basic reader.
        reader = ascii.read(str(path), format="basic", delimiter=_ecsv_delimiter(path), **options)
    else:
        reader = ascii.read(str(path), format="csv" if fmt == "csv" else "tab", **options)
    while True:
        try:
            with _quiet():
                chunk = next(reader)
        except StopIteration:
            return
        except Exception as exc:
            raise RefcatError(f"cannot read {path.name} as {fmt.upper()}: {_reason(exc)}") from None
        yield chunk


def _parquet_source(path: Path, chunk_rows: int) -> TableSource:
    import pyarrow.parquet as pq

    files = sorted(p for p in path.rglob("*.parquet") if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise RefcatError(f"the folder {path} holds no .parquet files")
    meta = [pq.ParquetFile(f).metadata for f in files]
    names = list(pq.ParquetFile(files[0]).schema_arrow.names)
    return TableSource(path, "parquet", chunk_rows, total=int(sum(m.num_rows for m in meta)), names=names,
                       ucds=[(n, "") for n in names], _files=files)


def _hats_source(path: Path, chunk_rows: int) -> TableSource:
    try:
        import hats
        from hats.io import paths as hats_paths
    except ImportError:
        raise RefcatError("reading HATS catalogues needs the hats package, which is not installed") from None
    catalog = hats.read_hats(path)
    if hasattr(catalog, "main_catalog"):  # a collection (catalogue + margins + indexes): the catalogue
        catalog = catalog.main_catalog
    if not hasattr(catalog, "get_healpix_pixels"):
        raise RefcatError(f"{path} is a HATS dataset without HEALPix partitions, not a catalogue")
    pixels = sorted(catalog.get_healpix_pixels(), key=lambda p: (p.order, p.pixel))
    files = [Path(str(hats_paths.pixel_catalog_file(catalog.catalog_base_dir, p))) for p in pixels]
    names = [n for n in (catalog.schema.names if catalog.schema is not None else [])]
    total = getattr(catalog.catalog_info, "total_rows", None)
    return TableSource(path, "hats", chunk_rows, total=int(total) if total is not None else None, names=names,
                       ucds=[(n, "") for n in names], _files=files)


def _parquet_chunks(files: list[Path], chunk_rows: int, start: int, columns: Sequence[str] | None) -> Iterator[Table]:
    """Batches of at most ``chunk_rows`` rows of every file in turn, numbered across files."""
    import pyarrow.parquet as pq

    index = 0
    for path in files:
        pf = pq.ParquetFile(path)
        meta = pf.metadata
        n_batches = -(-meta.num_rows // chunk_rows) if meta.num_rows else 0
        if index + n_batches <= start:  # a whole file already stored: not even opened for reading
            index += n_batches
            continue
        wanted = [c for c in columns if c in pf.schema_arrow.names] if columns else None
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=wanted):
            if index >= start:
                yield _arrow_to_table(batch)
            index += 1


def _arrow_to_table(batch) -> Table:
    out = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        values = column.to_numpy(zero_copy_only=False)
        if column.null_count and values.dtype.kind not in "fc":
            values = np.ma.masked_array(values, mask=column.is_null().to_numpy(zero_copy_only=False))
        out[name] = values
    return Table(out, copy=False)


# ------------------------------------------------------------------------------------------- import


def resolve_preset(*, survey: str, preset: str | Preset | None = None,
                   columns: str | Mapping[str, str] | None = None, version: str | None = None) -> Preset:
    """The preset an import uses (see :func:`shared.refcat.presets.choose_preset`)."""
    if isinstance(preset, Preset):
        return preset
    return choose_preset(survey=survey, preset=preset, columns=columns, version=version)


def _choose(source: TableSource, *, survey: str, preset, columns, version) -> Preset:
    """Explicit mapping > named preset > the survey's preset > the file's UCDs (VOTable)."""
    by_ucd = isinstance(preset, str) and preset.strip().lower() == "ucd"
    if not by_ucd:
        try:
            return resolve_preset(survey=survey, preset=preset, columns=columns, version=version)
        except RefcatError:
            if preset or columns or not any(u for _, u in (source.ucds or [])):
                raise
    source.colnames()
    if not any(u for _, u in (source.ucds or [])):
        raise RefcatError(f"{source.path.name} carries no UCDs (only VOTable fields do): give --preset or --columns")
    base = find_preset(survey)
    name, version = survey_and_version(survey, version, base.version if base else "1")
    return preset_from_ucds(source.ucds or [], survey=name, version=version, base=base)


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
    progress: bool | Callable[[int], None] = False,
    resume: bool = True,
    derive: Sequence[str] | None = None,
    buffer_rows: int | None = None,
) -> int:
    """Import one file (or Parquet folder, or HATS catalogue) into ``store``; returns the number of
    stars stored by this call (stars the survey already held, within
    :data:`shared.refcat.import_session.DUPLICATE_RADIUS_ARCSEC`, are skipped: ``store.last_import`` counts them).

    ``survey`` names the survey through the registry (:mod:`shared.refcat.surveys`: an alias such as
    ``REFCAT2`` stores under its canonical name ``ATLAS``, any other name is a survey of its own), and
    chooses the preset when ``preset`` and ``columns`` are not given;
    ``preset="ucd"`` maps VOTable columns by their UCDs (also the fallback for a VOTable of a survey
    without a preset); ``columns`` is an explicit mapping ``"ra=RAJ2000,dec=DEJ2000,V=Vmag,V_err=e_Vmag"``;
    ``synthetic`` defaults to True when the version contains "synthetic"; ``derive`` lists bands to
    derive at query time (e.g. ``["B", "V", "R", "I"]`` for SDSS). Rows without a position are dropped.
    With ``resume`` (the default) the import is journaled and a rerun after an interruption continues
    where it stopped; ``progress`` shows a tqdm bar (True) or is called with the rows of each chunk.
    ``buffer_rows`` overrides the store's buffer (stars held in memory, grouped by pixel, before they
    are written): a file in random sky order that fits in the buffer needs no merging of blocks
    afterwards, at the cost of about 300 bytes of memory per star.
    """
    path = Path(path)
    source = await asyncio.to_thread(open_source, path, format=format, chunk_rows=chunk_rows)
    chosen = await asyncio.to_thread(_choose, source, survey=survey, preset=preset, columns=columns, version=version)
    names = await asyncio.to_thread(source.colnames)
    mapping = chosen.resolve(names)
    info = SurveyInfo.from_preset(chosen, version=version if isinstance(preset, Preset) else None,
                                  description=description, synthetic=synthetic,
                                  survey=canonical_survey(survey), derive=derive)
    info = restrict_bands(info, mapping)
    key = source.key if resume else None
    caller = store
    if buffer_rows is not None:
        if buffer_rows < 1:
            raise RefcatError(f"the import buffer must hold at least one star, not {buffer_rows}")
        store = RefcatStore(store.db, block_rows=store.block_rows, encoding=store.encoding, buffer_rows=buffer_rows,
                            records_ttl_s=store.records_ttl_s)
    session = await store.begin_import(info, replace=replace, source_name=path.name, source_key=key)
    start = session.first_chunk

    bar = None
    update = progress if callable(progress) else None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=source.total, unit=" stars", unit_scale=True, desc=f"{info.name} {path.name}",
                   initial=min(start * chunk_rows, source.total or start * chunk_rows))
        update = bar.update

    def mapped() -> Iterator[StarColumns]:
        for chunk in source.chunks(start, mapping.columns):
            yield _apply(mapping, chunk)

    try:
        return await session.run(mapped(), progress=update)
    finally:
        caller.last_import = store.last_import
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
    """Store the reference catalogue of a :class:`shared.simfield.SimulatedField` (APASS DR9 column
    layout) as the synthetic survey ``SYNTH-DEMO`` (:data:`shared.refcat.surveys.DEMO_SURVEY`, a name no
    real catalogue uses), labelled synthetic (version "synthetic-demo-1" unless given, description
    saying it is simulated): real APASS imports beside it, and nobody gets simulated references by
    asking for APASS."""
    from shared.simfield import SYNTHETIC_DESCRIPTION, SYNTHETIC_VERSION

    return await store.import_table(
        field.reference, "apass9", survey=DEMO_SURVEY, version=version or SYNTHETIC_VERSION,
        description=SYNTHETIC_DESCRIPTION, synthetic=True, replace=replace, source_name="shared.simfield",
    )


__all__ = ["FORMATS", "TableSource", "guess_format", "import_file", "import_simulated_field", "open_source",
           "read_chunks", "resolve_preset"]
