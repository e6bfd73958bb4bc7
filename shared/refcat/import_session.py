"""Import: stars into the store, buffered by pixel, journaled and resumable, without duplicates.

An import (:func:`begin_import`, then :meth:`ImportSession.run`) buffers mapped chunks of stars by
pixel (:data:`BUFFER_ROWS`), writes them as block documents (:mod:`shared.refcat.blocks`) and, when it
needed several flushes, merges a pixel's blocks afterwards, so a pixel
is one block (several above :data:`shared.refcat.blocks.BLOCK_ROWS` stars, or when several files or
archive fetches filled it). A new survey, and the stars an import adds to an existing one, stay
invisible to queries until the import completes. Importing into a survey that holds stars skips every
star within :data:`DUPLICATE_RADIUS_ARCSEC` of a stored one (only the pixels the new stars fall in are
read), so imports can be repeated. With a source key (the file's name, size, mtime) the import is
journaled in the survey record and a rerun resumes after the last stored chunk.

Reading files is :mod:`shared.refcat.importer`; the store's collections and records are
:class:`shared.refcat.store.RefcatStore`.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import coverage as cov
from .blocks import COMPACTED_FLUSH, block_documents, block_slice, decode_columns, decode_positions, encode_columns
from .dedupe import near_positions, pixels_near
from .healpix import pixel_ranges
from .presets import ColumnMapping, Preset, RefcatError, StarColumns, choose_preset
from .records import SurveyInfo, canonical_survey, new_record, restrict_bands, summary_system, utcnow
from .surveys import check_synthetic

if TYPE_CHECKING:
    from .store import RefcatStore

#: Rows mapped per step of an import (the unit of the resume journal).
CHUNK_ROWS = 100_000
#: Stars an import holds in memory, grouped by pixel, before writing blocks (bounds memory: with 4
#: bands and proper motions ~100 bytes a star, about three copies while sorting and encoding: ~80 MB).
BUFFER_ROWS = 250_000
#: Two stars of one survey closer than this are the same star: an import skips the stars that another
#: (completed) import of the survey already stored within this distance, so importing a file again, or
#: a file that overlaps one already imported, never duplicates a star. A tenth of an arcsecond is far
#: below the resolution of every survey here and far above the rounding of positions written as text.
DUPLICATE_RADIUS_ARCSEC = 0.1


async def import_table(store: RefcatStore, table,
                       preset_or_mapping: Preset | ColumnMapping | str | Mapping[str, str], *,
                       survey: str | None = None, version: str | None = None, description: str | None = None,
                       synthetic: bool | None = None, replace: bool = False, source_name: str = "",
                       chunk_rows: int = CHUNK_ROWS, derive: Sequence[str] | None = None) -> int:
    """Import an in-memory table (astropy Table) through a preset (object or name), a resolved
    mapping, or an explicit mapping (``"ra=RAJ2000,dec=DEJ2000,V=Vmag"`` or dict; needs ``survey``).
    Returns the number of stars stored."""
    if isinstance(preset_or_mapping, ColumnMapping):
        mapping = preset_or_mapping
    else:
        if isinstance(preset_or_mapping, Preset):
            preset = preset_or_mapping
        elif isinstance(preset_or_mapping, Mapping) or "=" in str(preset_or_mapping):
            if not survey:
                raise RefcatError("an explicit column mapping needs a survey name")
            preset = choose_preset(survey=survey, columns=preset_or_mapping, version=version)
        elif survey:  # names resolved as `cpcs refcat import --survey S --preset P` resolves them
            preset = choose_preset(survey=survey, preset=str(preset_or_mapping), version=version)
        else:
            preset = choose_preset(survey=str(preset_or_mapping), version=version)
        version = preset.version if not isinstance(preset_or_mapping, Preset) else version
        mapping = preset.resolve(table.colnames)
    info = SurveyInfo.from_preset(mapping.preset, version=version, description=description,
                                  synthetic=synthetic, survey=canonical_survey(survey) if survey else None,
                                  derive=derive)
    info = restrict_bands(info, mapping)
    n = len(table)

    def chunks():
        for start in range(0, n, chunk_rows):
            yield mapping.apply(table[start:start + chunk_rows])

    return await import_chunks(store, info, chunks(), replace=replace, source_name=source_name)


async def import_chunks(store: RefcatStore, info: SurveyInfo,
                        chunks: Iterable[StarColumns] | AsyncIterable[StarColumns], *,
                        replace: bool = False, source_name: str = "", progress=None,
                        source_key: Mapping[str, Any] | None = None, first_chunk: int = 0) -> int:
    """Store mapped chunks of stars of one survey; returns the number of stars stored (this run).

    A new survey stays invisible to queries until the import completes, and so do the stars an
    import adds to an existing survey. Importing into an existing survey appends (several files of
    one catalogue) and requires the same version, unless ``replace`` deletes the survey first (how a
    new version replaces the stored one; the record then says the new version). An appended star
    within :data:`DUPLICATE_RADIUS_ARCSEC` of one that an earlier import stored is skipped (the
    same file twice, or overlapping files, never duplicate a star); the survey record's ``files``
    entry says how many were (``duplicates_skipped``), and so does :attr:`RefcatStore.last_import`.
    ``progress`` (optional) is called with the rows of every chunk read.

    Without ``source_key`` a failed import is rolled back. With ``source_key`` (a description of
    the file: name, size, mtime) the import is journaled: what was stored survives a failure and
    a later call with the same key resumes; ``chunks`` must then start at chunk ``first_chunk``,
    which :func:`begin_import` tells.
    """
    session = await begin_import(store, info, replace=replace, source_name=source_name, source_key=source_key)
    if session.first_chunk != first_chunk:
        raise RefcatError(f"the import of {source_name or 'this table'} must resume at chunk "
                          f"{session.first_chunk}, not {first_chunk}")
    return await session.run(chunks, progress=progress)


async def begin_import(store: RefcatStore, info: SurveyInfo, *, replace: bool = False, source_name: str = "",
                       source_key: Mapping[str, Any] | None = None) -> ImportSession:
    """Start (or, for a journaled import of the same file, resume) an import; see :func:`import_chunks`."""
    await store.ensure_indexes()
    check_synthetic(info.name, bool(info.synthetic))
    existing = await store.get_survey(info.name, with_coverage=True)
    journal = (existing or {}).get("journal")
    if existing is not None and replace:
        await store.delete_survey(existing["name"])
        existing = journal = None
    if journal and source_key is not None and _same_source(journal.get("source"), source_key):
        return ImportSession(store, existing["name"], info, journal["import_id"], existing,
                             source_name=source_name, source_key=dict(source_key),
                             first_chunk=int(journal.get("chunks_done", 0)), resumed=journal)
    if existing is not None and (journal or existing.get("status", "ready") != "ready"):
        what = f"of {journal['source'].get('file')} " if journal and journal.get("source") else ""
        raise RefcatError(
            f"an import {what}into survey {existing['name']} is running or was interrupted: rerun that "
            f"import to resume it, delete the survey, or import with replace"
        )
    if existing is not None:
        if existing.get("version") != info.version:
            raise RefcatError(
                f"survey {existing['name']} already holds version {existing.get('version')!r}, not "
                f"{info.version!r}: delete it first or import with replace"
            )
        if bool(existing.get("synthetic")) != bool(info.synthetic):
            raise RefcatError(f"survey {existing['name']} would mix synthetic and real stars: delete it first")
    name = existing["name"] if existing else info.name
    import_id = uuid.uuid4().hex
    now = utcnow()
    if existing is None:
        await store.surveys.delete_many({"name": name})
        record = new_record(name, info, now)
        record.update({"status": "importing", "import_id": import_id})
    else:
        record = dict(existing)
        record["pending_imports"] = list(record.get("pending_imports") or []) + [import_id]
    if source_key is not None:
        record["journal"] = {"import_id": import_id, "source": dict(source_key), "chunks_done": 0, "rows": 0,
                             "blocks": 0, "flushes": 0, "moc": "", "bands_seen": [], "pm": False,
                             "started_at": now}
    if existing is None:
        await store.surveys.insert_one(record)
    else:
        await store.replace_record(record)
    return ImportSession(store, name, info, import_id, existing, source_name=source_name,
                         source_key=dict(source_key) if source_key is not None else None, first_chunk=0)


def _same_source(stored: Mapping[str, Any] | None, key: Mapping[str, Any]) -> bool:
    return bool(stored) and all(stored.get(k) == v for k, v in key.items()) and set(stored) == set(key)


class ImportSession:
    """One import into a survey: buffers mapped chunks by pixel, writes full blocks, keeps the journal.

    Memory is bounded by the store's ``buffer_rows`` (stars held before a flush) plus one chunk. The
    journal in the survey record says after every flush how many chunks are stored; blocks carry the
    number of their flush, so a resumed import first deletes the blocks of a flush that did not
    complete, then continues with chunk ``first_chunk``.
    """

    def __init__(self, store: RefcatStore, name: str, info: SurveyInfo, import_id: str, existing: dict | None, *,
                 source_name: str, source_key: dict | None, first_chunk: int, resumed: dict | None = None):
        self.store = store
        self.name = name
        self.info = info
        self.import_id = import_id
        self.existing = existing if existing is None or existing.get("status", "ready") == "ready" else None
        self.created = existing is None or existing.get("status", "ready") != "ready"
        self.source_name = source_name
        self.source_key = source_key
        self.first_chunk = first_chunk
        journal = resumed or {}
        self.rows = int(journal.get("rows", 0))
        self.blocks = int(journal.get("blocks", 0))
        self.flushes = int(journal.get("flushes", 0))
        self.seq = self.blocks
        self.moc = cov.from_text(journal.get("moc") or "")
        self.bands_seen: list[str] = list(journal.get("bands_seen") or [])
        self.pm = bool(journal.get("pm"))
        self.data_flushes = int(journal.get("data_flushes", 0))
        self.phase = str(journal.get("phase") or "load")
        self.compacted_upto = int(journal.get("compacted_upto", -1))
        self.compacting = journal.get("compacting")
        self.resumed = resumed is not None
        self.duplicates = int(journal.get("duplicates", 0))
        # Stars that other, completed imports stored: an incoming star within DUPLICATE_RADIUS_ARCSEC of
        # one of them is skipped. Nothing to compare with for a new (or replaced) survey.
        stored = self.existing or {}
        self._dedupe = int(stored.get("rows", 0) or 0) > 0
        self._stored_moc_text = stored.get("moc")  # None: a record older than coverage maps (anywhere)
        self._stored_pixels: np.ndarray | None = None
        self._others_pending = set(stored.get("pending_imports") or ()) - {import_id}
        self._buffer: list[StarColumns] = []
        self._buffered = 0
        self._pending: tuple[asyncio.Future | None, dict] | None = None
        self._chunks_done = first_chunk

    async def run(self, chunks, *, progress=None) -> int:
        store = self.store
        if self.resumed:  # blocks of a flush that did not complete
            await store.blocks.delete_many({"import_id": self.import_id, "flush": {"$gte": self.flushes}})
        stored_before = self.rows
        try:
            async for chunk in _aiter(chunks):
                if progress is not None:
                    progress(chunk.n_input or len(chunk))
                self._chunks_done += 1
                if len(chunk):
                    for band in chunk.mags:
                        if band not in self.bands_seen:
                            self.bands_seen.append(band)
                    self.pm = self.pm or chunk.pmra is not None
                    self._buffer.append(chunk)
                    self._buffered += len(chunk)
                if self._buffered >= store.buffer_rows:
                    await self._flush()
            await self._flush(final=True)
            if self.data_flushes > 1:
                await self._compact()
        except BaseException:
            await asyncio.shield(self._abandon())
            if self.source_key is None:
                await asyncio.shield(self._rollback())
            raise
        await self._finish()
        return self.rows - stored_before

    async def _flush(self, final: bool = False) -> None:
        """Write the buffered stars as blocks. The insert runs while the next chunks are read (the
        database server and the reading thread work at the same time); the journal is written once
        an insert has completed, describing the state after it."""
        store = self.store
        if self._buffer:
            merged = _concat(self._buffer)
            self._buffer, self._buffered = [], 0
            if self._dedupe:
                merged, skipped = await self._without_stored(merged)
                self.duplicates += skipped
            docs, stored, pixels = await asyncio.to_thread(block_documents, self.name, self.import_id, self.seq, merged,
                                                           block_rows=store.block_rows, encoding=store.encoding,
                                                           flush=self.flushes)
            del merged
            self.seq += len(docs)
            self.rows += stored
            self.blocks += len(docs)
            self.flushes += 1
            if docs:
                self.data_flushes += 1
            if pixels.size:
                self.moc = self.moc.union(cov.from_pixels(pixels))
            snapshot = self._journal_state()
            await self._drain()
            task = asyncio.ensure_future(store.blocks.insert_many(docs, ordered=False)) if docs else None
            self._pending = (task, snapshot)
        if final:
            await self._drain()

    async def _without_stored(self, chunk: StarColumns) -> tuple[StarColumns, int]:
        """``chunk`` less the stars that another completed import of the survey stored within
        :data:`DUPLICATE_RADIUS_ARCSEC` (and the number left out). Only the pixels the stars (and
        the tolerance around them) fall in, and that the survey's coverage holds, are read."""
        store = self.store
        ra = np.mod(np.asarray(chunk.ra, dtype=float), 360.0)
        dec = np.asarray(chunk.dec, dtype=float)
        good = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
        if not good.any():
            return chunk, 0
        tol_deg = DUPLICATE_RADIUS_ARCSEC / 3600.0
        pixels = await asyncio.to_thread(pixels_near, ra[good], dec[good], tol_deg)
        if self._stored_moc_text is not None:
            if self._stored_pixels is None:
                self._stored_pixels = cov.pixels(cov.from_text(self._stored_moc_text))
            pixels = np.intersect1d(pixels, self._stored_pixels)
        if pixels.size == 0:
            return chunk, 0
        queries = []
        for first, last in pixel_ranges(pixels.tolist()):
            hp = first if first == last else {"$gte": first, "$lte": last}
            queries.append({"hp": hp, "survey": self.name})
        results = await asyncio.gather(*(store.blocks.find(q, {"_id": 0}).to_list(None) for q in queries))
        blocks = [d for docs in results for d in docs
                  if d.get("import_id") != self.import_id and d.get("import_id") not in self._others_pending]
        if not blocks:
            return chunk, 0
        duplicate = await asyncio.to_thread(_near_stored, ra, dec, good, blocks, tol_deg)
        n = int(np.count_nonzero(duplicate))
        return (chunk.take(~duplicate), n) if n else (chunk, 0)

    async def _drain(self) -> None:
        """Wait for the insert in flight, then journal the state it completed."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        task, snapshot = pending
        if task is not None:
            await task
        if self.source_key is not None:
            await self._write_journal(snapshot)

    async def _abandon(self) -> None:
        """After a failure: let the insert in flight finish (or fail) before anything else touches blocks."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] is not None:
            try:
                await pending[0]
            except BaseException:
                pass

    def _journal_state(self) -> dict:
        return {
            "import_id": self.import_id, "source": self.source_key, "chunks_done": self._chunks_done,
            "rows": self.rows, "blocks": self.blocks, "flushes": self.flushes, "moc": cov.to_text(self.moc),
            "bands_seen": list(self.bands_seen), "pm": self.pm, "data_flushes": self.data_flushes,
            "phase": self.phase, "compacted_upto": self.compacted_upto, "compacting": self.compacting,
            "duplicates": self.duplicates,
        }

    async def _write_journal(self, state: dict | None = None) -> None:
        record = await self.store.surveys.find_one({"name": self.name}, {"_id": 0})
        if record is None:
            raise RefcatError(f"survey {self.name} was deleted while it was being imported")
        record["journal"] = {**(state or self._journal_state()),
                             "started_at": (record.get("journal") or {}).get("started_at") or utcnow()}
        await self.store.replace_record(record)

    async def _compact(self) -> None:
        """Merge the blocks this import wrote for one pixel in several flushes into full blocks.

        Runs when the import needed more than one flush: a pixel then has a block per flush that saw
        its stars (every flush for a file in random sky order, a few boundary pixels for a file in sky
        order), and a query's cost on the server is mostly per document. Window by window of
        consecutive pixels (at most ``buffer_rows`` stars read at once), only the pixels with more than
        one block are rewritten. Crash-safe through the journal: ``compacting = [lo, hi, rows]`` is
        written before the merged blocks (flush -1) are inserted and the raw ones deleted; a resumed
        import that finds the window's merged rows complete finishes the deletion, else drops the
        merged blocks and merges again. The blocks stay invisible to queries until the import ends.
        Documents are deleted by ``_id`` lists (an index lookup on every server; nx-27017 deletes
        by other fields far more slowly).
        """
        store = self.store
        base = {"import_id": self.import_id}
        self.phase = "compact"
        if self.compacting:
            lo, hi, rows = (int(v) for v in self.compacting)
            window = {**base, "hp": {"$gte": lo, "$lte": hi}}
            merged = await store.blocks.find({**window, "flush": COMPACTED_FLUSH}, {"n": 1, "hp": 1}).to_list(None)
            if sum(int(d["n"]) for d in merged) == rows:
                done = {d["hp"] for d in merged}
                raw = await store.blocks.find({**window, "flush": {"$gte": 0}}, {"hp": 1}).to_list(None)
                stale = [d["_id"] for d in raw if d["hp"] in done]
                if stale:
                    await store.blocks.delete_many({"_id": {"$in": stale}})
                self.compacted_upto = hi
            elif merged:
                await store.blocks.delete_many({"_id": {"$in": [d["_id"] for d in merged]}})
            self.compacting = None
        pixels = np.sort(cov.pixels(self.moc))
        i = int(np.searchsorted(pixels, self.compacted_upto, side="right"))
        size = 2048
        while i < pixels.size:
            j = min(i + size, int(pixels.size))
            lo, hi = int(pixels[i]), int(pixels[j - 1])
            window = {**base, "hp": {"$gte": lo, "$lte": hi}, "flush": {"$gte": 0}}
            meta = await store.blocks.find(window, {"n": 1, "hp": 1}).to_list(None)
            counts: dict[int, int] = {}
            for d in meta:
                counts[d["hp"]] = counts.get(d["hp"], 0) + 1
            dup = [d for d in meta if counts[d["hp"]] > 1]
            # Most of the window to merge (a file in random order): read and delete the whole window
            # by range; a few boundary pixels (a file in sky order): by _id lists.
            whole = len(dup) > len(meta) // 2
            chosen = meta if whole else dup
            rows = sum(int(d["n"]) for d in chosen)
            if rows > store.buffer_rows and j - i > 1:
                size = max(1, (j - i) // 2)
                continue
            if dup:
                ids = [d["_id"] for d in chosen]
                selector = window if whole else {"_id": {"$in": ids}}
                self.compacting = [lo, hi, rows]
                await self._write_journal()
                raw = await store.blocks.find(selector, {"_id": 0}).to_list(None)
                docs = await asyncio.to_thread(self._merge_blocks, raw)
                if docs:
                    await store.blocks.insert_many(docs, ordered=False)
                await store.blocks.delete_many(selector)
                self.blocks += len(docs) - len(raw)
                self.seq += len(docs)
                self.compacting = None
                self.compacted_upto = hi
                if j < pixels.size:
                    await self._write_journal()
            self.compacted_upto = hi
            i = j
            size = min(2048, size * 2)

    def _merge_blocks(self, raw: list[dict]) -> list[dict]:
        """One pixel's blocks -> as few blocks as BLOCK_ROWS allows (flush COMPACTED_FLUSH)."""
        by_pixel: dict[int, list[dict]] = {}
        for doc in raw:
            by_pixel.setdefault(int(doc["hp"]), []).append(doc)
        out = []
        seq = self.seq
        for hp in sorted(by_pixel):
            docs = sorted(by_pixel[hp], key=lambda d: d.get("seq", 0))
            decoded = [decode_columns(d) for d in docs]
            sizes = [int(d["n"]) for d in docs]
            names: list[str] = []
            for cols in decoded:
                names += [c for c in cols if c not in names]
            columns = {c: np.concatenate([cols[c] if c in cols else np.full(n, np.nan)
                                          for cols, n in zip(decoded, sizes, strict=True)]) for c in names}
            for name in [c for c in names if c.startswith("mag_") and "err_" + c[4:] not in columns]:
                columns["err_" + name[4:]] = np.full(sum(sizes), np.nan)
            total = sum(sizes)
            for lo in range(0, total, self.store.block_rows):
                hi = min(lo + self.store.block_rows, total)
                doc = {"survey": self.name, "hp": hp, "import_id": self.import_id, "seq": seq,
                       "flush": COMPACTED_FLUSH, "n": hi - lo}
                out.append(encode_columns(doc, block_slice(columns, lo, hi), self.store.encoding))
                seq += 1
        return out

    async def _rollback(self) -> None:
        store = self.store
        await store.blocks.delete_many({"import_id": self.import_id})
        if self.created:
            await store.surveys.delete_many({"name": self.name, "import_id": self.import_id})
        else:
            record = await store.surveys.find_one({"name": self.name}, {"_id": 0})
            if record is not None:
                record["pending_imports"] = [i for i in record.get("pending_imports") or [] if i != self.import_id]
                record.pop("journal", None)
                await store.replace_record(record)

    async def _finish(self) -> None:
        store, info = self.store, self.info
        now = utcnow()
        record = await store.surveys.find_one({"name": self.name}, {"_id": 0}) or new_record(self.name, info, now)
        bands = list(record.get("bands") or []) if self.existing else []
        for band in list(info.bands) + self.bands_seen:
            if band not in bands:
                bands.append(band)
        systems = dict(record.get("systems") or {}) if self.existing else {}
        for band, system in info.systems.items():
            systems.setdefault(band, system)
        files = list(record.get("files") or []) if self.existing else []
        files.append({"file": self.source_name or "(table)", "rows": self.rows, "import_id": self.import_id,
                      "version": info.version, "duplicates_skipped": self.duplicates, "imported_at": now})
        old_moc = cov.from_text(record.get("moc") or "") if self.existing else cov.empty()
        moc = old_moc.union(self.moc)
        derived = dict(record.get("derived") or {}) if self.existing else {}
        derived.update(info.derived)
        origins = list(record.get("origins") or []) if self.existing else []
        if "import" not in origins:
            origins.append("import")
        base_rows = int(record.get("rows", 0)) if self.existing else 0
        base_blocks = int(record.get("blocks", 0)) if self.existing else 0
        had_pm = bool(record.get("proper_motions")) if self.existing else False
        record.update({
            "rows": base_rows + self.rows, "blocks": base_blocks + self.blocks, "bands": bands, "systems": systems,
            "system": summary_system(systems), "status": "ready", "imported_at": now, "files": files,
            "moc": cov.to_text(moc), "sky_percent": cov.sky_percent(moc),
            "coverage_rev": int(record.get("coverage_rev", 0)) + 1,
            "proper_motions": had_pm or self.pm,
            "derived": derived, "origins": origins,
            "pending_imports": [i for i in record.get("pending_imports") or [] if i != self.import_id],
        })
        record.pop("journal", None)
        record.pop("import_id", None)
        await store.replace_record(record)
        store.last_import = {"survey": self.name, "version": info.version, "rows": self.rows,
                             "duplicates_skipped": self.duplicates, "import_id": self.import_id}


def _near_stored(ra_deg: np.ndarray, dec_deg: np.ndarray, good: np.ndarray, blocks: list[dict],
                 tol_deg: float) -> np.ndarray:
    """Per incoming star: True when a star of ``blocks`` lies within ``tol_deg`` (False for bad positions)."""
    stored_ra = np.concatenate([decode_positions(d)[0] for d in blocks])
    stored_dec = np.concatenate([decode_positions(d)[1] for d in blocks])
    return near_positions(ra_deg, dec_deg, good, stored_ra, stored_dec, tol_deg)


def _concat(chunks: list[StarColumns]) -> StarColumns:
    if len(chunks) == 1:
        return chunks[0]
    bands: list[str] = []
    for c in chunks:
        for b in c.mags:
            if b not in bands:
                bands.append(b)

    def col(getter, c):
        v = getter(c)
        return np.asarray(v, dtype=float) if v is not None else np.full(len(c), np.nan)

    has_pm = any(c.pmra is not None for c in chunks)
    return StarColumns(
        ra=np.concatenate([np.asarray(c.ra, dtype=float) for c in chunks]),
        dec=np.concatenate([np.asarray(c.dec, dtype=float) for c in chunks]),
        mags={b: np.concatenate([col(lambda c, b=b: c.mags.get(b), c) for c in chunks]) for b in bands},
        errs={b: np.concatenate([col(lambda c, b=b: c.errs.get(b), c) for c in chunks]) for b in bands},
        n_input=sum(c.n_input for c in chunks),
        pmra=np.concatenate([col(lambda c: c.pmra, c) for c in chunks]) if has_pm else None,
        pmdec=np.concatenate([col(lambda c: c.pmdec, c) for c in chunks]) if has_pm else None,
    )


async def _aiter(chunks):
    if hasattr(chunks, "__aiter__"):
        async for chunk in chunks:
            yield chunk
    else:
        iterator = iter(chunks)
        sentinel = object()
        while True:
            # Reading and mapping a chunk is CPU and disk work: keep it off the event loop.
            chunk = await asyncio.to_thread(next, iterator, sentinel)
            if chunk is sentinel:
                return
            yield chunk


__all__ = ["BUFFER_ROWS", "CHUNK_ROWS", "DUPLICATE_RADIUS_ARCSEC", "ImportSession", "begin_import", "import_chunks",
           "import_table"]
