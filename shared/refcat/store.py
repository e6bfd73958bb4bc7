"""The local reference-catalogue store: survey stars in MongoDB, as column blocks per HEALPix pixel.

Layout (collection ``refcat_blocks``): one document per (survey, pixel, chunk)::

    {survey: "APASS", hp: 412345, import_id: "…", seq: 3, n: 812,
     ra: [...], dec: [...], mag_V: [...], err_V: [...], mag_g: [...], ...}

``hp`` is the nested HEALPix pixel at :data:`shared.refcat.healpix.NSIDE` (see there for the choice);
NaN is stored as null (neither JSON-backed servers nor portable clients like NaN). A pixel holds
several blocks when the stars came in several import chunks or exceed :data:`BLOCK_ROWS`. Indexes:
(survey, hp) and (hp). A cone takes the pixels overlapping it (astropy-healpix ``cone_search_lonlat``),
which in the nested scheme are a few runs of consecutive numbers, fetches each run with
``{hp: {$gte, $lte}, survey: {$in: [...]}}`` (concurrently), concatenates the blocks into numpy arrays
and trims to the exact radius. Ranges rather than ``hp: {$in: pixels}``: on nx-27017 an ``$in`` is
evaluated through SQLite ``json_each`` on every document (query time grows with the whole store),
while a range on ``hp`` is an index search; on MongoDB both are index scans.

Collection ``refcat_surveys``: one document per survey (name, version, bands, photometric systems,
epoch, rows, description, synthetic flag, import time, imported files).

Only plain CRUD, ``$in``, ``$set``/``$inc`` and compound indexes are used, so the same code runs on
real MongoDB and on nx-27017 (which e.g. stores a ``$push``-ed sub-document as a JSON string, and
rejects NaN: both avoided here).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterable, Iterable, Mapping

import numpy as np
from bson import Binary

from .healpix import NSIDE, ORDER, cone_pixels, pixel_ranges, pixels_of, separation_deg
from .model import ReferenceStars
from .presets import ColumnMapping, Preset, RefcatError, StarColumns, choose_preset, find_preset, get_preset

BLOCKS = "refcat_blocks"
SURVEYS = "refcat_surveys"

#: Largest number of stars in one block document (~1 MB of BSON with 10 bands); bounds document size
#: in crowded pixels while keeping a typical pixel in one or two documents.
BLOCK_ROWS = 5000
#: Rows mapped and written per step of an import (bounded memory).
CHUNK_ROWS = 100_000
#: Largest cone served (about 1 800 pixels in one ``$in``); calibration fields are far smaller.
MAX_CONE_RADIUS_DEG = 5.0
#: Magnitudes and errors are stored to 1e-5 mag; positions are stored unrounded.
MAG_DECIMALS = 5
#: How block columns are written: "list" (arrays of numbers, NaN as null: readable in any shell) or
#: "binary" (little-endian float64 bytes, NaN kept: about 5x faster to serve on nx-27017, which turns
#: every number of a list into a Python object). Reading accepts both, block by block.
BLOCK_ENCODING = "binary"


@dataclass(frozen=True)
class SurveyInfo:
    """What the survey record says about an import."""

    name: str
    version: str
    bands: tuple[str, ...] = ()
    systems: Mapping[str, str] = field(default_factory=dict)  # band -> "AB" / "Vega"
    epoch: float | None = None
    description: str = ""
    synthetic: bool = False
    source: str = ""  # VizieR table or origin of the layout
    preset: str = ""  # key of the preset used

    @classmethod
    def from_preset(cls, preset: Preset, *, version: str | None = None, description: str | None = None,
                    synthetic: bool | None = None, survey: str | None = None) -> "SurveyInfo":
        version = version or preset.version
        synthetic = is_synthetic_version(version) if synthetic is None else synthetic
        desc = description or preset.description
        if synthetic and "synthetic" not in desc.lower():
            desc = f"SYNTHETIC (simulated, not survey data): {desc}"
        return cls(
            name=survey or preset.survey, version=version, bands=tuple(preset.band_names),
            systems=dict(preset.systems), epoch=preset.epoch, description=desc, synthetic=synthetic,
            source=preset.source, preset=preset.key,
        )


def is_synthetic_version(version: str) -> bool:
    return "synthetic" in (version or "").lower()


def summary_system(systems: Mapping[str, str]) -> str:
    values = set(systems.values())
    return values.pop() if len(values) == 1 else ("mixed" if values else "unknown")


def _utcnow() -> dt.datetime:
    now = dt.datetime.now(dt.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)  # BSON dates hold milliseconds


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
        return np.frombuffer(values, dtype="<f8").astype(float)
    return np.array(values, dtype=float)


class RefcatStore:
    """Reference stars by sky position, on a PyMongo asyncio database (``AsyncMongoClient(...)[name]``)."""

    def __init__(self, db, *, block_rows: int = BLOCK_ROWS, encoding: str = BLOCK_ENCODING):
        if encoding not in ("list", "binary"):
            raise ValueError(f"encoding must be 'list' or 'binary', not {encoding!r}")
        self.db = db
        self.blocks = db[BLOCKS]
        self.surveys = db[SURVEYS]
        self.block_rows = int(block_rows)
        self.encoding = encoding
        self._indexed = False

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

    async def list_surveys(self) -> list[dict[str, Any]]:
        """Every survey record, by name (``_id`` dropped; only completed imports)."""
        docs = await self.surveys.find({}, {"_id": 0}).to_list(None)
        docs = [d for d in docs if d.get("status", "ready") == "ready"]
        return sorted(docs, key=lambda d: d["name"].lower())

    async def get_survey(self, name: str) -> dict[str, Any] | None:
        """The record of survey ``name`` (case-insensitive), or None."""
        doc = await self.surveys.find_one({"name": name}, {"_id": 0})
        if doc is not None:
            return doc
        wanted = name.strip().lower()
        for doc in await self.surveys.find({}, {"_id": 0}).to_list(None):
            if doc["name"].lower() == wanted:
                return doc
        return None

    async def delete_survey(self, name: str) -> int:
        """Remove a survey and all its stars; returns the number of stars removed (RefcatError if unknown)."""
        doc = await self.get_survey(name)
        if doc is None:
            known = ", ".join(d["name"] for d in await self.list_surveys()) or "none"
            raise RefcatError(f"there is no survey {name!r} in the store (surveys: {known})")
        await self.blocks.delete_many({"survey": doc["name"]})
        await self.surveys.delete_one({"name": doc["name"]})
        return int(doc.get("rows", 0))

    # ------------------------------------------------------------------------------------------- cone

    async def cone(self, ra_deg: float, dec_deg: float, radius_deg: float, *,
                   surveys: list[str] | None = None) -> list[ReferenceStars]:
        """Stars within ``radius_deg`` of (ra, dec), one :class:`ReferenceStars` per survey that has some.

        ``surveys`` restricts to these names (case-insensitive); unknown names are ignored. Results are
        in the order of ``surveys`` when given, else by survey name.
        """
        ra_deg, dec_deg, radius_deg = float(ra_deg), float(dec_deg), float(radius_deg)
        if not (np.isfinite(ra_deg) and np.isfinite(dec_deg) and -90.0 <= dec_deg <= 90.0):
            raise ValueError(f"invalid cone centre ({ra_deg}, {dec_deg})")
        if not (0.0 < radius_deg <= MAX_CONE_RADIUS_DEG):
            raise ValueError(f"cone radius must be in (0, {MAX_CONE_RADIUS_DEG}] deg, got {radius_deg}")
        records = {d["name"]: d for d in await self.list_surveys()}
        if surveys is None:
            names = sorted(records, key=str.lower)
        else:
            by_lower = {n.lower(): n for n in records}
            names = []
            for wanted in surveys:
                real = by_lower.get(str(wanted).strip().lower())
                if real and real not in names:
                    names.append(real)
        if not names:
            return []
        queries = []
        for first, last in pixel_ranges(cone_pixels(ra_deg, dec_deg, radius_deg)):
            hp = first if first == last else {"$gte": first, "$lte": last}
            queries.append({"hp": hp, "survey": {"$in": names}})
        results = await asyncio.gather(*(self.blocks.find(q, {"_id": 0}).to_list(None) for q in queries))
        by_survey: dict[str, list[dict]] = {}
        for docs in results:
            for doc in docs:
                by_survey.setdefault(doc["survey"], []).append(doc)
        out = []
        for name in names:
            blocks = by_survey.get(name)
            if not blocks:
                continue
            stars = _assemble(records[name], blocks, ra_deg, dec_deg, radius_deg)
            if len(stars):
                out.append(stars)
        return out

    # ----------------------------------------------------------------------------------------- import

    async def import_table(self, table, preset_or_mapping: Preset | ColumnMapping | str | Mapping[str, str], *,
                           survey: str | None = None, version: str | None = None, description: str | None = None,
                           synthetic: bool | None = None, replace: bool = False, source_name: str = "",
                           chunk_rows: int = CHUNK_ROWS) -> int:
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
            else:
                preset = get_preset(str(preset_or_mapping))
            mapping = preset.resolve(table.colnames)
        info = SurveyInfo.from_preset(mapping.preset, version=version, description=description,
                                      synthetic=synthetic, survey=canonical_survey(survey) if survey else None)
        info = _restrict_bands(info, mapping)
        n = len(table)

        def chunks():
            for start in range(0, n, chunk_rows):
                yield mapping.apply(table[start:start + chunk_rows])

        return await self.import_chunks(info, chunks(), replace=replace, source_name=source_name)

    async def import_chunks(self, info: SurveyInfo, chunks: Iterable[StarColumns] | AsyncIterable[StarColumns], *,
                            replace: bool = False, source_name: str = "", progress=None) -> int:
        """Store mapped chunks of stars of one survey; returns the number of stars stored.

        A new survey stays invisible to :meth:`cone` and :meth:`list_surveys` until the import completes;
        on any failure the blocks written by this import are removed again. Importing into an existing
        survey appends (several files of one catalogue) and requires the same version, unless
        ``replace`` deletes the survey first. ``progress`` (optional) is called with the rows of every
        chunk read, before dropping rows without a position.
        """
        await self.ensure_indexes()
        existing = await self.get_survey(info.name)
        if existing is not None and existing.get("status", "ready") != "ready" and not replace:
            raise RefcatError(
                f"an import of survey {existing['name']} is running or was interrupted: delete the survey "
                f"first or import with replace"
            )
        if existing is not None:
            if replace:
                await self.delete_survey(existing["name"])
                existing = None
            elif existing.get("version") != info.version:
                raise RefcatError(
                    f"survey {existing['name']} already holds version {existing.get('version')!r}, not "
                    f"{info.version!r}: delete it first or import with replace"
                )
            elif bool(existing.get("synthetic")) != bool(info.synthetic):
                raise RefcatError(f"survey {existing['name']} would mix synthetic and real stars: delete it first")
        name = existing["name"] if existing else info.name
        import_id = uuid.uuid4().hex
        now = _utcnow()
        if existing is None:
            await self.surveys.delete_many({"name": name})  # a stale record of an interrupted import
            await self.surveys.insert_one({
                "name": name, "version": info.version, "bands": list(info.bands),
                "systems": dict(info.systems), "system": summary_system(info.systems),
                "epoch": info.epoch, "rows": 0, "blocks": 0, "description": info.description,
                "synthetic": bool(info.synthetic), "source": info.source, "preset": info.preset,
                "healpix_order": ORDER, "healpix_nside": NSIDE,
                "status": "importing", "import_id": import_id, "created_at": now, "imported_at": now,
                "files": [],
            })
        rows = blocks = seq = 0
        bands_seen: list[str] = []
        try:
            async for chunk in _aiter(chunks):
                if progress is not None:
                    progress(chunk.n_input or len(chunk))
                if not len(chunk):
                    continue
                for band in chunk.mags:
                    if band not in bands_seen:
                        bands_seen.append(band)
                docs, stored = await asyncio.to_thread(self._block_documents, name, import_id, seq, chunk)
                seq += len(docs)
                if docs:
                    await self.blocks.insert_many(docs, ordered=False)
                rows += stored
                blocks += len(docs)
        except BaseException:
            await asyncio.shield(self._rollback(name, import_id, created=existing is None))
            raise
        await self._finish(name, existing, info, import_id, rows, blocks, bands_seen, source_name)
        return rows

    import_rows = import_chunks  # the name the design notes use

    async def _rollback(self, name: str, import_id: str, *, created: bool) -> None:
        await self.blocks.delete_many({"import_id": import_id})
        if created:
            await self.surveys.delete_many({"name": name, "import_id": import_id})

    async def _finish(self, name, existing, info: SurveyInfo, import_id, rows, blocks, bands_seen, source_name):
        now = _utcnow()
        record = existing or await self.surveys.find_one({"name": name}, {"_id": 0}) or {}
        bands = list(record.get("bands") or [])
        for band in list(info.bands) + bands_seen:
            if band not in bands:
                bands.append(band)
        systems = dict(record.get("systems") or {})
        for band, system in info.systems.items():
            systems.setdefault(band, system)
        files = list(record.get("files") or [])
        files.append({"file": source_name or "(table)", "rows": rows, "import_id": import_id, "imported_at": now})
        total_rows = int(existing.get("rows", 0)) + rows if existing else rows
        total_blocks = int(existing.get("blocks", 0)) + blocks if existing else blocks
        record.update({
            "rows": total_rows, "blocks": total_blocks, "bands": bands, "systems": systems,
            "system": summary_system(systems), "status": "ready", "imported_at": now, "files": files,
        })
        record.pop("_id", None)
        # A whole-document replace, not $set: nx-27017 stores a top-level datetime given in $set as a string.
        await self.surveys.replace_one({"name": name}, record)

    def _block_documents(self, survey: str, import_id: str, seq0: int,
                         chunk: StarColumns) -> tuple[list[dict], int]:
        """Group one chunk by pixel into block documents (runs in a worker thread); also the stars kept."""
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
        starts = np.flatnonzero(np.r_[True, hp_sorted[1:] != hp_sorted[:-1]])
        ends = np.r_[starts[1:], hp_sorted.size]
        ra = ra_in[order]
        dec = dec_in[order]
        mags = {b: np.asarray(m, dtype=float)[order] for b, m in chunk.mags.items()}
        errs = {b: np.asarray(chunk.errs.get(b, np.full(len(m), np.nan)), dtype=float)[order]
                for b, m in chunk.mags.items()}
        encode = _binary if self.encoding == "binary" else _nullable
        docs = []
        seq = seq0
        for start, end in zip(starts, ends):
            for lo in range(int(start), int(end), self.block_rows):
                hi = min(lo + self.block_rows, int(end))
                doc = {"survey": survey, "hp": int(hp_sorted[lo]), "import_id": import_id, "seq": seq,
                       "n": hi - lo, "ra": encode(ra[lo:hi], None), "dec": encode(dec[lo:hi], None)}
                for band, values in mags.items():
                    part = values[lo:hi]
                    if np.isfinite(part).any():
                        doc[f"mag_{band}"] = encode(part, MAG_DECIMALS)
                        doc[f"err_{band}"] = encode(errs[band][lo:hi], MAG_DECIMALS)
                docs.append(doc)
                seq += 1
        return docs, len(chunk)


def canonical_survey(name: str) -> str:
    """The stored spelling of a survey name: a preset's survey name when ``name`` names one."""
    preset = find_preset(name)
    return preset.survey if preset else name.strip()


def _restrict_bands(info: SurveyInfo, mapping: ColumnMapping) -> SurveyInfo:
    """The survey record lists the bands the table really had."""
    bands = tuple(mapping.band_names)
    systems = {b: s for b, s in mapping.systems.items()}
    return SurveyInfo(name=info.name, version=info.version, bands=bands, systems=systems, epoch=info.epoch,
                      description=info.description, synthetic=info.synthetic, source=info.source,
                      preset=info.preset)


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


def _assemble(record: dict, blocks: list[dict], ra0: float, dec0: float, radius: float) -> ReferenceStars:
    blocks.sort(key=lambda d: (d["hp"], d.get("import_id", ""), d.get("seq", 0)))
    bands = list(record.get("bands") or [])
    for doc in blocks:
        for key in doc:
            if key.startswith("mag_") and key[4:] not in bands:
                bands.append(key[4:])
    ra = np.concatenate([_floats(d["ra"]) for d in blocks])
    dec = np.concatenate([_floats(d["dec"]) for d in blocks])
    inside = separation_deg(ra0, dec0, ra, dec) <= radius
    mags = {}
    errs = {}
    for band in bands:
        mags[band] = np.concatenate([_floats(d.get(f"mag_{band}"), d["n"]) for d in blocks])[inside]
        errs[band] = np.concatenate([_floats(d.get(f"err_{band}"), d["n"]) for d in blocks])[inside]
    return ReferenceStars(
        survey=record["name"], version=str(record.get("version", "")),
        ra_deg=ra[inside], dec_deg=dec[inside], mags=mags, mag_errs=errs,
    )


__all__ = ["BLOCKS", "BLOCK_ROWS", "CHUNK_ROWS", "MAX_CONE_RADIUS_DEG", "RefcatStore", "SURVEYS", "SurveyInfo", "canonical_survey",
           "is_synthetic_version"]
