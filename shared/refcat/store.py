"""Storage: the local reference-catalogue store, survey stars in MongoDB as column blocks per HEALPix pixel.

Collection ``refcat_blocks``: one document per (survey, pixel, block), in the format of
:mod:`shared.refcat.blocks`. Collection ``refcat_surveys``: one record per survey, described in
:mod:`shared.refcat.records` (coverage MOC, bands, version, import journal).

Indexes: (survey, hp), (hp), (import_id). :meth:`RefcatStore.fetch_blocks` reads the pixels of a
region, which in the nested scheme are a few runs of consecutive numbers, with one
``{hp: {$gte, $lte}, survey: {$in: [...]}}`` query per run (concurrently). Ranges rather than
``hp: {$in: pixels}``: on nx-27017 an ``$in`` is evaluated through SQLite ``json_each`` on every
document, while a range on ``hp`` is an index search; on MongoDB both are index scans.

:class:`RefcatStore` owns the collections and these read/write primitives, and is the entry point for
the rest: :meth:`RefcatStore.cone`, :meth:`RefcatStore.box` and :meth:`RefcatStore.query` run the
searches of :mod:`shared.refcat.query`; :meth:`RefcatStore.import_table`,
:meth:`RefcatStore.import_chunks` and :meth:`RefcatStore.begin_import` run the imports of
:mod:`shared.refcat.import_session`. Archive results are cached by
:func:`shared.refcat.providers.cache_tiles`.

Only plain CRUD, ``$in``, ranges and compound indexes are used, so the same code runs on real MongoDB
and on nx-27017 (which e.g. stores a ``$push``-ed sub-document as a JSON string, a datetime given in
``$set`` as a string, and rejects NaN: all avoided here; records are written whole with ``replace_one``).
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import Any

from . import coverage as cov
from . import import_session as imports
from .blocks import BLOCK_ENCODING, BLOCK_ROWS, BLOCKS, DECODED, ENCODINGS, decode_columns
from .healpix import pixel_ranges
from .import_session import BUFFER_ROWS, CHUNK_ROWS, DUPLICATE_RADIUS_ARCSEC, ImportSession
from .model import ReferenceStars
from .presets import ColumnMapping, Preset, RefcatError, StarColumns
from .query import MAX_CONE_RADIUS_DEG, Box, Cone, QueryResult, SurveyCoverage, box_region, cone_region, search
from .records import SURVEYS, SurveyInfo, canonical_survey, derived_config, is_synthetic_version
from .surveys import canonical_name

#: How long a store object reuses the survey records it read (seconds): saves a round trip per query;
#: its own imports and fetches refresh them at once, another process's within this time.
RECORDS_TTL_S = 1.0
#: stars of stored blocks kept in memory per store object (the fields of a transient are asked for again
#: and again); about 150 bytes a star, stored and decoded, so ~75 MB at the bound
BLOCK_CACHE_ROWS = 500_000

_RECORD_HEAVY = {"moc": 0, "journal": 0}


class RefcatStore:
    """Reference stars by sky position, on a PyMongo asyncio database (``AsyncMongoClient(...)[name]``)."""

    def __init__(self, db, *, block_rows: int = BLOCK_ROWS, encoding: str = BLOCK_ENCODING,
                 buffer_rows: int = BUFFER_ROWS, records_ttl_s: float = RECORDS_TTL_S,
                 block_cache_rows: int = BLOCK_CACHE_ROWS):
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be 'packed', 'binary' or 'list', not {encoding!r}")
        self.db = db
        self.blocks = db[BLOCKS]
        self.surveys = db[SURVEYS]
        self.block_rows = int(block_rows)
        self.buffer_rows = int(buffer_rows)
        self.encoding = encoding
        self.records_ttl_s = float(records_ttl_s)
        self._records_cache: tuple[float, list[dict]] | None = None
        #: (state of the survey's record, pixel) -> its blocks; a record changes with every import
        self._blocks_cache: OrderedDict[tuple, list[dict]] = OrderedDict()
        self._cached_rows, self.block_cache_rows = 0, int(block_cache_rows)
        self._indexed = False
        #: What the last import through this object stored (survey, version, rows, duplicates_skipped).
        self.last_import: dict[str, Any] | None = None

    def invalidate_records(self) -> None:
        """Forget the survey records read (after a write: the next query reads them again)."""
        self._records_cache = None

    async def ensure_indexes(self) -> None:
        if self._indexed:
            return
        await self.blocks.create_index([("survey", 1), ("hp", 1)])
        # hp alone as well: nx-27017 (SQLite expression indexes) can only use an index whose first key
        # is constrained by a plain comparison, and its `survey $in` test is not one.
        await self.blocks.create_index([("hp", 1)])
        await self.blocks.create_index([("import_id", 1)])
        await self.surveys.create_index([("name", 1)], unique=True)
        self._indexed = True

    # ---------------------------------------------------------------------------------------- surveys

    async def list_surveys(self, *, with_coverage: bool = False) -> list[dict[str, Any]]:
        """Every survey record, by name (``_id`` dropped; only completed imports). The coverage map
        (``moc``) and the import journal are left out unless ``with_coverage``."""
        projection = {"_id": 0} if with_coverage else {"_id": 0, **_RECORD_HEAVY}
        docs = await self.surveys.find({}, projection).to_list(None)
        docs = [d for d in docs if d.get("status", "ready") == "ready"]
        return sorted(docs, key=lambda d: d["name"].lower())

    async def get_survey(self, name: str, *, with_coverage: bool = False) -> dict[str, Any] | None:
        """The record of survey ``name`` (case-insensitive, whatever its status; an alias of the survey
        registry finds its canonical survey, e.g. ``REFCAT2`` finds ``ATLAS``), or None. A record stored
        under exactly the name given wins over the alias's survey."""
        projection = {"_id": 0} if with_coverage else {"_id": 0, **_RECORD_HEAVY}
        doc = await self.surveys.find_one({"name": name}, projection)
        if doc is not None:
            return doc
        wanted = [name.strip().lower(), canonical_name(name).lower()]
        docs = await self.surveys.find({}, projection).to_list(None)
        for key in wanted:
            for doc in docs:
                if doc["name"].lower() == key:
                    return doc
        return None

    async def delete_survey(self, name: str) -> int:
        """Remove a survey and all its stars; returns the number of stars removed (RefcatError if unknown)."""
        doc = await self.get_survey(name)
        if doc is None:
            known = ", ".join(d["name"] for d in await self.list_surveys()) or "none"
            raise RefcatError(f"there is no survey {name!r} in the store (surveys: {known})")
        self.invalidate_records()
        await self.blocks.delete_many({"survey": doc["name"]})
        await self.surveys.delete_one({"name": doc["name"]})
        return int(doc.get("rows", 0))

    async def coverage_of(self, name: str):
        """The coverage MOC of a survey (empty when unknown)."""
        doc = await self.surveys.find_one({"name": name}, {"_id": 0, "moc": 1})
        return cov.from_text((doc or {}).get("moc") or "")

    async def ready_records(self, surveys: Sequence[str] | None) -> list[dict]:
        """Ready records (with coverage) of the named surveys in that order, or of all by name (read again
        after :data:`RECORDS_TTL_S`, or at once after this object wrote)."""
        now = time.monotonic()
        cached = self._records_cache
        if cached is not None and now - cached[0] <= self.records_ttl_s:
            docs = cached[1]
        else:
            docs = await self.surveys.find({}, {"_id": 0, "journal": 0}).to_list(None)
            self._records_cache = (now, docs)
        records = {d["name"]: d for d in docs if d.get("status", "ready") == "ready"}
        if surveys is None:
            return [records[n] for n in sorted(records, key=str.lower)]
        by_lower = {n.lower(): n for n in records}
        out: list[dict] = []
        for wanted in surveys:
            real = by_lower.get(str(wanted).strip().lower()) or by_lower.get(canonical_name(str(wanted)).lower())
            if real and all(r["name"] != real for r in out):
                out.append(records[real])
        return out

    # ---------------------------------------------------------------------------------------- queries

    async def cone(self, ra_deg: float, dec_deg: float, radius_deg: float, *,
                   surveys: list[str] | None = None, bands: Sequence[str] | None = None,
                   mag_limits: Mapping[str, tuple[float | None, float | None]] | None = None,
                   epoch_jyear: float | None = None) -> list[ReferenceStars]:
        """Stars within ``radius_deg`` of (ra, dec), one :class:`ReferenceStars` per survey that has some.

        ``surveys`` restricts to these names (case-insensitive, aliases of the survey registry resolved);
        unknown names are ignored. Results are
        in the order of ``surveys`` when given, else by survey name. ``bands`` keeps only those bands
        (and the stars with at least one of them); ``mag_limits`` (band -> (bright, faint), either may
        be None) keeps stars within the limits in every band named; ``epoch_jyear`` moves positions of
        surveys with proper motions to that epoch (selection is done on the moved positions).
        """
        result = await self.query(cone_region(ra_deg, dec_deg, radius_deg), surveys=surveys, bands=bands,
                                  mag_limits=mag_limits, epoch_jyear=epoch_jyear)
        return result.stars

    async def box(self, ra_min: float, ra_max: float, dec_min: float, dec_max: float, *,
                  surveys: list[str] | None = None, bands: Sequence[str] | None = None,
                  mag_limits: Mapping[str, tuple[float | None, float | None]] | None = None,
                  epoch_jyear: float | None = None) -> list[ReferenceStars]:
        """Stars with ``ra_min <= ra <= ra_max`` (through RA 0 when ra_min > ra_max) and
        ``dec_min <= dec <= dec_max``; options as for :meth:`cone`."""
        result = await self.query(box_region(ra_min, ra_max, dec_min, dec_max), surveys=surveys, bands=bands,
                                  mag_limits=mag_limits, epoch_jyear=epoch_jyear)
        return result.stars

    async def query(self, region: Cone | Box, *, surveys: Sequence[str] | None = None,
                    bands: Sequence[str] | None = None,
                    mag_limits: Mapping[str, tuple[float | None, float | None]] | None = None,
                    epoch_jyear: float | None = None, records: list[dict] | None = None) -> QueryResult:
        """Stars in ``region`` and, per survey, how much of the region its coverage holds. A survey
        whose coverage misses the region entirely is reported ``outside`` and no block is read for it
        (:func:`shared.refcat.query.search`)."""
        return await search(self, region, surveys=surveys, bands=bands, mag_limits=mag_limits,
                            epoch_jyear=epoch_jyear, records=records)

    # ---------------------------------------------------------------------------------------- blocks

    async def fetch_blocks(self, pixels: list[int], names: list[str], records: list[dict]) -> dict[str, list[dict]]:
        """Blocks of ``names`` in ``pixels`` that their coverage includes, by survey (one range query per run
        of pixels not in memory). Blocks read are kept in memory under the state of their survey's record
        (version, rows, blocks, pending imports), so an import or a deletion is never answered from memory
        once the record that says so has been read."""
        if all(rec.get("moc") is not None for rec in records):
            union = cov.from_text(records[0]["moc"])
            for rec in records[1:]:
                union = union.union(cov.from_text(rec["moc"]))
            pixels = cov.pixels(cov.from_pixels(pixels).intersection(union)).tolist()
        states = {name: _record_state(rec) for name, rec in zip(names, records, strict=True)}
        wanted = [(states[name], p) for name in names for p in pixels]
        have = {key: self._cached(key) for key in wanted if key in self._blocks_cache}
        missing = sorted({key[1] for key in wanted if key not in have})
        if missing:
            have.update(await self._read_blocks(missing, names, records, states))
        by_survey: dict[str, list[dict]] = {}
        for name in names:
            found = [doc for p in pixels for doc in have[(states[name], p)]]
            if found:
                by_survey[name] = found
        return by_survey

    async def _read_blocks(self, pixels: list[int], names: list[str], records: list[dict],
                           states: dict[str, tuple]) -> dict[tuple, list[dict]]:
        queries = []
        for first, last in pixel_ranges(pixels):
            hp = first if first == last else {"$gte": first, "$lte": last}
            queries.append({"hp": hp, "survey": {"$in": names}} if len(names) > 1 else {"hp": hp, "survey": names[0]})
        results = await asyncio.gather(*(self.blocks.find(q, {"_id": 0}).to_list(None) for q in queries))
        pending = {name: set(rec.get("pending_imports") or ()) for name, rec in zip(names, records, strict=True)}
        read: dict[tuple, list[dict]] = {(states[name], p): [] for name in names for p in pixels}
        for docs in results:
            for doc in docs:
                if doc.get("import_id") in pending.get(doc["survey"], ()):
                    continue
                key = (states[doc["survey"]], int(doc["hp"]))
                if key in read:
                    read[key].append({**doc, DECODED: decode_columns(doc)})  # decoded once, used many times
        for key, docs in read.items():
            self._remember_blocks(key, docs)
        return read

    def _cached(self, key: tuple) -> list[dict]:
        self._blocks_cache.move_to_end(key)
        return self._blocks_cache[key]

    def _remember_blocks(self, key: tuple, docs: list[dict]) -> None:
        if key in self._blocks_cache:
            self._cached_rows -= sum(int(d.get("n", 0)) for d in self._blocks_cache.pop(key))
        self._blocks_cache[key] = docs
        self._cached_rows += sum(int(d.get("n", 0)) for d in docs)
        while self._cached_rows > self.block_cache_rows and len(self._blocks_cache) > 1:
            _, dropped = self._blocks_cache.popitem(last=False)
            self._cached_rows -= sum(int(d.get("n", 0)) for d in dropped)

    async def replace_record(self, record: dict) -> None:
        """Write a survey record whole (found by name) and forget the cached records."""
        self.invalidate_records()
        record = {k: v for k, v in record.items() if k != "_id"}
        # A whole-document replace, not $set: nx-27017 stores a top-level datetime given in $set as a string.
        await self.surveys.replace_one({"name": record["name"]}, record)

    # ----------------------------------------------------------------------------------------- import

    async def import_table(self, table, preset_or_mapping: Preset | ColumnMapping | str | Mapping[str, str], *,
                           survey: str | None = None, version: str | None = None, description: str | None = None,
                           synthetic: bool | None = None, replace: bool = False, source_name: str = "",
                           chunk_rows: int = CHUNK_ROWS, derive: Sequence[str] | None = None) -> int:
        """Import an in-memory table (astropy Table); see :func:`shared.refcat.import_session.import_table`."""
        return await imports.import_table(self, table, preset_or_mapping, survey=survey, version=version,
                                          description=description, synthetic=synthetic, replace=replace,
                                          source_name=source_name, chunk_rows=chunk_rows, derive=derive)

    async def import_chunks(self, info: SurveyInfo, chunks: Iterable[StarColumns] | AsyncIterable[StarColumns], *,
                            replace: bool = False, source_name: str = "", progress=None,
                            source_key: Mapping[str, Any] | None = None, first_chunk: int = 0) -> int:
        """Store mapped chunks of stars of one survey; returns the number of stars stored (this run). See
        :func:`shared.refcat.import_session.import_chunks` (appending, duplicates, journal and resume)."""
        return await imports.import_chunks(self, info, chunks, replace=replace, source_name=source_name,
                                           progress=progress, source_key=source_key, first_chunk=first_chunk)

    import_rows = import_chunks  # the name the design notes use

    async def begin_import(self, info: SurveyInfo, *, replace: bool = False, source_name: str = "",
                           source_key: Mapping[str, Any] | None = None) -> ImportSession:
        """Start (or, for a journaled import of the same file, resume) an import; see :meth:`import_chunks`."""
        return await imports.begin_import(self, info, replace=replace, source_name=source_name, source_key=source_key)


# Names that callers import from here; each is defined in the module that owns it.
__all__ = ["BLOCKS", "BLOCK_ENCODING", "BLOCK_ROWS", "BUFFER_ROWS", "Box", "CHUNK_ROWS", "Cone",
           "DUPLICATE_RADIUS_ARCSEC", "ImportSession", "MAX_CONE_RADIUS_DEG", "QueryResult", "RECORDS_TTL_S",
           "RefcatStore", "SURVEYS", "SurveyCoverage", "SurveyInfo", "canonical_survey", "derived_config",
           "is_synthetic_version"]


def _record_state(record: dict) -> tuple:
    """What changes in a survey's record whenever its stored blocks change."""
    return (record["name"], str(record.get("version", "")), record.get("rows"), record.get("blocks"),
            tuple(record.get("pending_imports") or ()),
            tuple(str(f.get("import_id", "")) for f in record.get("files") or ()))
