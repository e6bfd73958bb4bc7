"""The local reference-catalogue store: survey stars in MongoDB, as column blocks per HEALPix pixel.

Layout (collection ``refcat_blocks``): one document per (survey, pixel, block)::

    {survey: "APASS", hp: 412345, import_id: "…", seq: 3, flush: 0, n: 812,
     cols: ["pmra", "pmdec", "mag_V", "err_V", ...], data: <bytes>}

``hp`` is the nested HEALPix pixel at :data:`shared.refcat.healpix.NSIDE` (see there for the choice).
``data`` packs ra and dec as little-endian float64 and the other columns (``cols``) as float32, NaN
where missing (``encoding="packed"``, the default; see :func:`_encode_columns`). Blocks written by
earlier versions (one float64 bytes field per column, ``encoding="binary"``) or as lists of numbers
with null for NaN (``encoding="list"``, readable in any shell) are read as well, block by block.
``pmra``/``pmdec`` (mas/yr) are there for surveys with proper motions. An import buffers stars by
pixel (:data:`BUFFER_ROWS`) and, when it needed several flushes, merges a pixel's blocks afterwards
(:meth:`ImportSession._compact`), so a pixel is one block (several above :data:`BLOCK_ROWS` stars, or
when several files or archive fetches filled it).

Indexes: (survey, hp), (hp), (import_id). A query takes the pixels overlapping the region that the
surveys' coverage maps include (:mod:`shared.refcat.coverage`), which in the nested scheme are a few
runs of consecutive numbers, fetches each run with ``{hp: {$gte, $lte}, survey: {$in: [...]}}``
(concurrently), concatenates the blocks into numpy arrays and trims to the exact region. Ranges rather
than ``hp: {$in: pixels}``: on nx-27017 an ``$in`` is evaluated through SQLite ``json_each`` on every
document, while a range on ``hp`` is an index search; on MongoDB both are index scans.

Collection ``refcat_surveys``: one document per survey: name, version, bands, photometric systems,
epoch, rows, description, synthetic flag, imported files, coverage (``moc``: MOC text; ``sky_percent``;
``coverage_rev``, increased on every change), ``proper_motions``, ``derived`` (band -> transformation
set of the bands computed at query time), ``origins`` (``import``, ``archive:<provider>``), and while
an import runs its ``journal`` (file, size, mtime, chunks stored) and ``pending_imports`` (blocks of
unfinished imports, which queries ignore). Survey names are resolved through the survey registry
(:mod:`shared.refcat.surveys`): records carry canonical names, and lookups accept the aliases.
Importing into a survey that holds stars skips every star within :data:`DUPLICATE_RADIUS_ARCSEC` of
a stored one (only the pixels the new stars fall in are read), so imports can be repeated.

Only plain CRUD, ``$in``, ranges and compound indexes are used, so the same code runs on real MongoDB
and on nx-27017 (which e.g. stores a ``$push``-ed sub-document as a JSON string, a datetime given in
``$set`` as a string, and rejects NaN: all avoided here; records are written whole with ``replace_one``).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import dataclass, field, replace as dc_replace
from typing import Any, AsyncIterable, Callable, Iterable, Mapping, Sequence

import numpy as np
from bson import Binary
from pymongo.errors import DuplicateKeyError

from . import coverage as cov
from .astrometry import max_motion_deg, propagate
from .derived import derive_bands
from .healpix import NSIDE, ORDER, cone_pixels, pixel_ranges, pixels_of, separation_deg
from .model import ReferenceStars
from .presets import ColumnMapping, Preset, RefcatError, StarColumns, choose_preset
from .surveys import canonical_name, check_synthetic

BLOCKS = "refcat_blocks"
SURVEYS = "refcat_surveys"

#: Largest number of stars in one block document (~1 MB of BSON with 10 bands); bounds document size
#: in crowded pixels while keeping a typical pixel in one or two documents.
BLOCK_ROWS = 5000
#: Rows mapped per step of an import (the unit of the resume journal).
CHUNK_ROWS = 100_000
#: Stars an import holds in memory, grouped by pixel, before writing blocks (bounds memory: with 4
#: bands and proper motions ~100 bytes a star, about three copies while sorting and encoding: ~80 MB).
BUFFER_ROWS = 250_000
#: Largest cone served (about 1 800 pixels); calibration fields are far smaller.
MAX_CONE_RADIUS_DEG = 5.0
#: Magnitudes and errors are stored to 1e-5 mag; positions and proper motions are stored unrounded.
MAG_DECIMALS = 5
#: How block columns are written by default: "packed", "binary" or "list" (see :func:`_encode_columns`).
BLOCK_ENCODING = "packed"
#: How long a store object reuses the survey records it read (seconds): saves a round trip per query;
#: its own imports and fetches refresh them at once, another process's within this time.
RECORDS_TTL_S = 1.0
#: Two stars of one survey closer than this are the same star: an import skips the stars that another
#: (completed) import of the survey already stored within this distance, so importing a file again, or
#: a file that overlaps one already imported, never duplicates a star. A tenth of an arcsecond is far
#: below the resolution of every survey here and far above the rounding of positions written as text.
DUPLICATE_RADIUS_ARCSEC = 0.1
#: Proper motion assumed for the query margin when propagating (a few stars move faster; 10.4"/yr is
#: Barnard's star, the fastest).
MAX_PM_MASYR = 10_400.0

_RECORD_HEAVY = {"moc": 0, "journal": 0}
#: ``flush`` of the blocks an import's compaction wrote (raw blocks count their flushes from 0).
COMPACTED_FLUSH = -1


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
    derived: Mapping[str, str] = field(default_factory=dict)  # band -> transformation set (derived at query time)

    @classmethod
    def from_preset(cls, preset: Preset, *, version: str | None = None, description: str | None = None,
                    synthetic: bool | None = None, survey: str | None = None,
                    derive: Sequence[str] | None = None) -> "SurveyInfo":
        version = version or preset.version
        synthetic = is_synthetic_version(version) if synthetic is None else synthetic
        desc = description or preset.description
        if synthetic and "synthetic" not in desc.lower():
            desc = f"SYNTHETIC (simulated, not survey data): {desc}"
        return cls(
            name=survey or preset.survey, version=version, bands=tuple(preset.band_names),
            systems=dict(preset.systems), epoch=preset.epoch, description=desc, synthetic=synthetic,
            source=preset.source, preset=preset.key, derived=derived_config(preset, derive),
        )


def derived_config(preset: Preset, derive: Sequence[str] | None) -> dict[str, str]:
    """band -> transformation set for the ``derive`` bands the operator asked for (RefcatError when the
    survey cannot derive one of them)."""
    wanted = [b.strip() for b in (derive or []) if b.strip()]
    if not wanted:
        return {}
    if not preset.derive:
        raise RefcatError(f"survey {preset.survey} has no published transformation to derive bands from; "
                          f"derived bands are offered for: "
                          + ", ".join(f"{p.survey} ({' '.join(p.derivable)})" for p in _derivable_presets()))
    bad = [b for b in wanted if b not in preset.derivable]
    if bad:
        raise RefcatError(f"survey {preset.survey} can derive bands {' '.join(preset.derivable)}, not {' '.join(bad)}")
    return {b: preset.derive for b in wanted}


def _derivable_presets():
    from .presets import PRESETS

    return [p for p in PRESETS if p.derive]


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
        return np.frombuffer(values, dtype="<f8")
    return np.array(values, dtype=float)


_POSITION_COLUMNS = ("ra", "dec")


def _encode_columns(doc: dict, columns: Mapping[str, np.ndarray], encoding: str) -> dict:
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


def _decode_columns(doc: dict) -> dict[str, np.ndarray]:
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


# ------------------------------------------------------------------------------------------ regions


@dataclass(frozen=True)
class Cone:
    ra_deg: float
    dec_deg: float
    radius_deg: float

    def bounding_cone(self) -> tuple[float, float, float]:
        return self.ra_deg, self.dec_deg, self.radius_deg

    def contains(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        return separation_deg(self.ra_deg, self.dec_deg, ra, dec) <= self.radius_deg

    def describe(self) -> str:
        return f"RA {self.ra_deg:.4f}, Dec {self.dec_deg:.4f} (radius {self.radius_deg * 60:.1f} arcmin)"


@dataclass(frozen=True)
class Box:
    """RA/Dec limits in degrees; ``ra_min > ra_max`` means the box crosses RA 0."""

    ra_min: float
    ra_max: float
    dec_min: float
    dec_max: float

    def _ra_width(self) -> float:
        return (self.ra_max - self.ra_min) % 360.0 or (360.0 if self.ra_max != self.ra_min else 0.0)

    def bounding_cone(self) -> tuple[float, float, float]:
        width = self._ra_width()
        ra_c = (self.ra_min + width / 2.0) % 360.0
        dec_c = (self.dec_min + self.dec_max) / 2.0
        ras = (self.ra_min + np.linspace(0.0, width, 33)) % 360.0
        edge_ra = np.concatenate([ras, ras, np.full(33, self.ra_min), np.full(33, self.ra_max)])
        decs = np.linspace(self.dec_min, self.dec_max, 33)
        edge_dec = np.concatenate([np.full(33, self.dec_min), np.full(33, self.dec_max), decs, decs])
        radius = float(separation_deg(ra_c, dec_c, edge_ra, edge_dec).max()) * 1.0001 + 1e-6
        return ra_c, dec_c, radius

    def contains(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        offset = (np.asarray(ra) - self.ra_min) % 360.0
        return (offset <= self._ra_width()) & (dec >= self.dec_min) & (dec <= self.dec_max)

    def describe(self) -> str:
        return f"RA {self.ra_min:.4f}..{self.ra_max:.4f}, Dec {self.dec_min:.4f}..{self.dec_max:.4f}"


@dataclass(frozen=True)
class SurveyCoverage:
    """How much of a queried field a survey covers, and what was done about it.

    ``status``: ``covered`` (the whole field is in the survey's coverage), ``partial`` (part of it;
    ``fraction`` says how much), ``outside`` (none of it: no block was read), and, from
    :class:`shared.refcat.providers.ReferenceSource`, ``fetched`` (just fetched from the archive and
    cached), ``unreachable`` (the archive did not answer; ``message`` says why) and ``disabled``.
    """

    survey: str
    status: str
    fraction: float
    n_stars: int = 0
    version: str = ""
    message: str = ""
    source: str = "store"


@dataclass
class QueryResult:
    stars: list[ReferenceStars]
    coverage: dict[str, SurveyCoverage]

    def sentence(self) -> str:
        """One line per survey that is not fully covered, for logs and failure reasons."""
        parts = [c.message for c in self.coverage.values() if c.status not in ("covered", "fetched") and c.message]
        return "; ".join(parts)


# -------------------------------------------------------------------------------------------- store


class RefcatStore:
    """Reference stars by sky position, on a PyMongo asyncio database (``AsyncMongoClient(...)[name]``)."""

    def __init__(self, db, *, block_rows: int = BLOCK_ROWS, encoding: str = BLOCK_ENCODING,
                 buffer_rows: int = BUFFER_ROWS, records_ttl_s: float = RECORDS_TTL_S):
        if encoding not in ("list", "binary", "packed"):
            raise ValueError(f"encoding must be 'packed', 'binary' or 'list', not {encoding!r}")
        self.db = db
        self.blocks = db[BLOCKS]
        self.surveys = db[SURVEYS]
        self.block_rows = int(block_rows)
        self.buffer_rows = int(buffer_rows)
        self.encoding = encoding
        self.records_ttl_s = float(records_ttl_s)
        self._records_cache: tuple[float, list[dict]] | None = None
        self._indexed = False
        #: What the last import through this object stored (survey, version, rows, duplicates_skipped).
        self.last_import: dict[str, Any] | None = None

    def _invalidate(self) -> None:
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
        self._invalidate()
        await self.blocks.delete_many({"survey": doc["name"]})
        await self.surveys.delete_one({"name": doc["name"]})
        return int(doc.get("rows", 0))

    async def coverage_of(self, name: str):
        """The coverage MOC of a survey (empty when unknown)."""
        doc = await self.surveys.find_one({"name": name}, {"_id": 0, "moc": 1})
        return cov.from_text((doc or {}).get("moc") or "")

    async def _records(self, surveys: Sequence[str] | None) -> list[dict]:
        """Ready records (with coverage) of the named surveys in that order, or of all by name."""
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
        result = await self.query(_cone_region(ra_deg, dec_deg, radius_deg), surveys=surveys, bands=bands,
                                  mag_limits=mag_limits, epoch_jyear=epoch_jyear)
        return result.stars

    async def box(self, ra_min: float, ra_max: float, dec_min: float, dec_max: float, *,
                  surveys: list[str] | None = None, bands: Sequence[str] | None = None,
                  mag_limits: Mapping[str, tuple[float | None, float | None]] | None = None,
                  epoch_jyear: float | None = None) -> list[ReferenceStars]:
        """Stars with ``ra_min <= ra <= ra_max`` (through RA 0 when ra_min > ra_max) and
        ``dec_min <= dec <= dec_max``; options as for :meth:`cone`."""
        result = await self.query(_box_region(ra_min, ra_max, dec_min, dec_max), surveys=surveys, bands=bands,
                                  mag_limits=mag_limits, epoch_jyear=epoch_jyear)
        return result.stars

    async def query(self, region: Cone | Box, *, surveys: Sequence[str] | None = None,
                    bands: Sequence[str] | None = None,
                    mag_limits: Mapping[str, tuple[float | None, float | None]] | None = None,
                    epoch_jyear: float | None = None, records: list[dict] | None = None) -> QueryResult:
        """Stars in ``region`` and, per survey, how much of the region its coverage holds. A survey
        whose coverage misses the region entirely is reported ``outside`` and no block is read for it."""
        ra_c, dec_c, radius = region.bounding_cone()
        if records is None:
            records = await self._records(surveys)
        field_moc = cov.cone(ra_c, dec_c, radius)  # a box is tested through its bounding cone
        report: dict[str, SurveyCoverage] = {}
        wanted: list[dict] = []
        for rec in records:
            frac = _fraction(rec, field_moc)
            if frac <= 0.0:
                report[rec["name"]] = SurveyCoverage(
                    rec["name"], "outside", 0.0, version=str(rec.get("version", "")),
                    message=f"no reference coverage from {rec['name']}: the field at {region.describe()} is "
                            f"outside the survey's coverage")
                continue
            report[rec["name"]] = SurveyCoverage(
                rec["name"], "covered" if frac >= 0.999 else "partial", frac, version=str(rec.get("version", "")),
                message="" if frac >= 0.999 else
                f"{rec['name']} covers only {frac:.0%} of the field at {region.describe()}")
            wanted.append(rec)
        if not wanted:
            return QueryResult([], report)
        margin = 0.0
        if epoch_jyear is not None:
            for rec in wanted:
                if rec.get("proper_motions") and rec.get("epoch") is not None:
                    margin = max(margin, MAX_PM_MASYR * abs(float(epoch_jyear) - float(rec["epoch"])) / 3600e3)
        pixels = cone_pixels(ra_c, dec_c, min(radius + margin, 180.0))
        blocks = await self._fetch(pixels, [r["name"] for r in wanted], wanted)
        out = []
        for rec in wanted:
            got = blocks.get(rec["name"])
            stars = _assemble(rec, got or [], region, bands=bands, mag_limits=mag_limits, epoch_jyear=epoch_jyear)
            report[rec["name"]] = dc_replace(report[rec["name"]], n_stars=len(stars))
            if len(stars):
                out.append(stars)
        return QueryResult(out, report)

    async def _fetch(self, pixels: list[int], names: list[str], records: list[dict]) -> dict[str, list[dict]]:
        """Blocks of ``names`` in ``pixels`` that their coverage includes, by survey (one range query per run)."""
        if all(rec.get("moc") is not None for rec in records):
            union = cov.from_text(records[0]["moc"])
            for rec in records[1:]:
                union = union.union(cov.from_text(rec["moc"]))
            pixels = cov.pixels(cov.from_pixels(pixels).intersection(union)).tolist()
        queries = []
        for first, last in pixel_ranges(pixels):
            hp = first if first == last else {"$gte": first, "$lte": last}
            queries.append({"hp": hp, "survey": {"$in": names}} if len(names) > 1 else {"hp": hp, "survey": names[0]})
        results = await asyncio.gather(*(self.blocks.find(q, {"_id": 0}).to_list(None) for q in queries))
        pending = {name: set(rec.get("pending_imports") or ()) for name, rec in zip(names, records)}
        by_survey: dict[str, list[dict]] = {}
        for docs in results:
            for doc in docs:
                if doc.get("import_id") in pending.get(doc["survey"], ()):
                    continue
                by_survey.setdefault(doc["survey"], []).append(doc)
        return by_survey

    # ----------------------------------------------------------------------------------------- import

    async def import_table(self, table, preset_or_mapping: Preset | ColumnMapping | str | Mapping[str, str], *,
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
        info = _restrict_bands(info, mapping)
        n = len(table)

        def chunks():
            for start in range(0, n, chunk_rows):
                yield mapping.apply(table[start:start + chunk_rows])

        return await self.import_chunks(info, chunks(), replace=replace, source_name=source_name)

    async def import_chunks(self, info: SurveyInfo, chunks: Iterable[StarColumns] | AsyncIterable[StarColumns], *,
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
        which :meth:`begin_import` tells.
        """
        session = await self.begin_import(info, replace=replace, source_name=source_name, source_key=source_key)
        if session.first_chunk != first_chunk:
            raise RefcatError(f"the import of {source_name or 'this table'} must resume at chunk "
                              f"{session.first_chunk}, not {first_chunk}")
        return await session.run(chunks, progress=progress)

    import_rows = import_chunks  # the name the design notes use

    async def begin_import(self, info: SurveyInfo, *, replace: bool = False, source_name: str = "",
                           source_key: Mapping[str, Any] | None = None) -> "ImportSession":
        """Start (or, for a journaled import of the same file, resume) an import; see :meth:`import_chunks`."""
        await self.ensure_indexes()
        check_synthetic(info.name, bool(info.synthetic))
        existing = await self.get_survey(info.name, with_coverage=True)
        journal = (existing or {}).get("journal")
        if existing is not None and replace:
            await self.delete_survey(existing["name"])
            existing = journal = None
        if journal and source_key is not None and _same_source(journal.get("source"), source_key):
            return ImportSession(self, existing["name"], info, journal["import_id"], existing,
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
        now = _utcnow()
        if existing is None:
            await self.surveys.delete_many({"name": name})
            record = _new_record(name, info, now)
            record.update({"status": "importing", "import_id": import_id})
        else:
            record = dict(existing)
            record["pending_imports"] = list(record.get("pending_imports") or []) + [import_id]
        if source_key is not None:
            record["journal"] = {"import_id": import_id, "source": dict(source_key), "chunks_done": 0, "rows": 0,
                                 "blocks": 0, "flushes": 0, "moc": "", "bands_seen": [], "pm": False,
                                 "started_at": now}
        if existing is None:
            await self.surveys.insert_one(record)
        else:
            await self._replace_record(record)
        return ImportSession(self, name, info, import_id, existing, source_name=source_name,
                             source_key=dict(source_key) if source_key is not None else None, first_chunk=0)

    async def _replace_record(self, record: dict) -> None:
        self._invalidate()
        record = {k: v for k, v in record.items() if k != "_id"}
        # A whole-document replace, not $set: nx-27017 stores a top-level datetime given in $set as a string.
        await self.surveys.replace_one({"name": record["name"]}, record)

    def _block_documents(self, survey: str, import_id: str, seq0: int, chunk: StarColumns,
                         flush: int = 0) -> tuple[list[dict], int, np.ndarray]:
        """Group stars by pixel into block documents (runs in a worker thread); also the stars kept and
        the pixels they fill."""
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
        for start, end in zip(starts, ends):
            for lo in range(int(start), int(end), self.block_rows):
                hi = min(lo + self.block_rows, int(end))
                doc = {"survey": survey, "hp": int(hp_sorted[lo]), "import_id": import_id, "seq": seq,
                       "flush": flush, "n": hi - lo}
                docs.append(_encode_columns(doc, _block_slice(columns, lo, hi), self.encoding))
                seq += 1
        return docs, len(chunk), np.unique(hp_sorted)

    # ----------------------------------------------------------------------------- archive cache

    async def add_fetched(self, info: SurveyInfo, stars: StarColumns, tiles: Sequence[int], *, origin: str,
                          expected_rev: int | None = None) -> tuple[int, bool]:
        """Cache stars fetched from an archive for the sky ``tiles`` (nested pixels at ORDER): the
        stars in those tiles not already covered are stored, and the tiles join the coverage.

        Optimistic concurrency: when ``expected_rev`` is given and the survey's ``coverage_rev`` has
        changed meanwhile (another process cached something), nothing is kept and ``(0, False)`` is
        returned, so the caller can look again. Returns (stars stored, True) otherwise.
        """
        await self.ensure_indexes()
        existing = await self.get_survey(info.name, with_coverage=True)
        if existing is not None and existing.get("status", "ready") != "ready":
            raise RefcatError(f"survey {existing['name']} is being imported; the archive result is not cached")
        if existing is not None and existing.get("version") != info.version:
            raise RefcatError(f"survey {existing['name']} holds version {existing.get('version')!r}, the archive "
                              f"serves {info.version!r}: the archive result is not cached")
        rev = int((existing or {}).get("coverage_rev", 0))
        if expected_rev is not None and rev != expected_rev:
            return 0, False
        old = cov.from_text((existing or {}).get("moc") or "")
        tiles_arr = np.unique(np.asarray(list(tiles), dtype=np.int64))
        if not old.empty():
            tiles_arr = np.setdiff1d(tiles_arr, cov.pixels(old))
        hp = pixels_of(np.mod(stars.ra, 360.0), stars.dec) if len(stars) else np.zeros(0, np.int64)
        keep = np.isin(hp, tiles_arr)
        chunk = stars.take(keep) if not keep.all() else stars
        import_id = uuid.uuid4().hex
        self._invalidate()
        docs, rows, _ = await asyncio.to_thread(self._block_documents, info.name, import_id, 0, chunk)
        now = _utcnow()
        record = dict(existing) if existing else _new_record(info.name, info, now)
        if existing is None:
            record["status"] = "ready"
        if docs:
            await self.blocks.insert_many(docs, ordered=False)
        moc = old.union(cov.from_pixels(tiles_arr)) if tiles_arr.size else old
        bands = list(record.get("bands") or [])
        for band in chunk.mags:
            if band not in bands:
                bands.append(band)
        origins = list(record.get("origins") or [])
        if origin not in origins:
            origins.append(origin)
        derived = dict(record.get("derived") or {})
        derived.update({b: t for b, t in info.derived.items() if b not in bands})
        record.update({
            "derived": derived,
            "rows": int(record.get("rows", 0)) + rows, "blocks": int(record.get("blocks", 0)) + len(docs),
            "bands": bands, "moc": cov.to_text(moc), "sky_percent": cov.sky_percent(moc), "coverage_rev": rev + 1,
            "origins": origins, "fetches": int(record.get("fetches", 0)) + 1, "fetched_at": now,
            "proper_motions": bool(record.get("proper_motions")) or chunk.pmra is not None,
        })
        if existing is None:
            try:
                await self.surveys.insert_one(record)
            except DuplicateKeyError:  # another process created the survey meanwhile
                await self.blocks.delete_many({"import_id": import_id})
                return 0, False
            return rows, True
        result = await self.surveys.replace_one({"name": record["name"], "coverage_rev": rev},
                                                {k: v for k, v in record.items() if k != "_id"})
        if result.matched_count == 0:
            await self.blocks.delete_many({"import_id": import_id})
            return 0, False
        return rows, True


def _block_slice(columns: Mapping[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
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
            if np.isfinite(values[lo:hi]).any() or np.isfinite(columns["pmdec" if key == "pmra" else "pmra"][lo:hi]).any():
                out[key] = part
        else:
            out[key] = part
    return out


def _new_record(name: str, info: SurveyInfo, now: dt.datetime) -> dict:
    return {
        "name": name, "version": info.version, "bands": list(info.bands),
        "systems": dict(info.systems), "system": summary_system(info.systems),
        "epoch": info.epoch, "rows": 0, "blocks": 0, "description": info.description,
        "synthetic": bool(info.synthetic), "source": info.source, "preset": info.preset,
        "healpix_order": ORDER, "healpix_nside": NSIDE, "status": "ready", "created_at": now, "imported_at": now,
        "files": [], "moc": "", "sky_percent": 0.0, "coverage_rev": 0, "proper_motions": False,
        "derived": dict(info.derived), "origins": [], "pending_imports": [],
    }


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
            docs, stored, pixels = await asyncio.to_thread(store._block_documents, self.name, self.import_id,
                                                           self.seq, merged, self.flushes)
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
        pixels = await asyncio.to_thread(_pixels_near, ra[good], dec[good], tol_deg)
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
                             "started_at": (record.get("journal") or {}).get("started_at") or _utcnow()}
        await self.store._replace_record(record)

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
            decoded = [_decode_columns(d) for d in docs]
            sizes = [int(d["n"]) for d in docs]
            names: list[str] = []
            for cols in decoded:
                names += [c for c in cols if c not in names]
            columns = {c: np.concatenate([cols[c] if c in cols else np.full(n, np.nan)
                                          for cols, n in zip(decoded, sizes)]) for c in names}
            for name in [c for c in names if c.startswith("mag_") and "err_" + c[4:] not in columns]:
                columns["err_" + name[4:]] = np.full(sum(sizes), np.nan)
            total = sum(sizes)
            for lo in range(0, total, self.store.block_rows):
                hi = min(lo + self.store.block_rows, total)
                doc = {"survey": self.name, "hp": hp, "import_id": self.import_id, "seq": seq,
                       "flush": COMPACTED_FLUSH, "n": hi - lo}
                out.append(_encode_columns(doc, _block_slice(columns, lo, hi), self.store.encoding))
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
                await store._replace_record(record)

    async def _finish(self) -> None:
        store, info = self.store, self.info
        now = _utcnow()
        record = await store.surveys.find_one({"name": self.name}, {"_id": 0}) or _new_record(self.name, info, now)
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
        await store._replace_record(record)
        store.last_import = {"survey": self.name, "version": info.version, "rows": self.rows,
                             "duplicates_skipped": self.duplicates, "import_id": self.import_id}


def _pixels_near(ra_deg: np.ndarray, dec_deg: np.ndarray, tol_deg: float) -> np.ndarray:
    """The pixels of the positions and of the points ``tol_deg`` north, south, east and west of them
    (a star beside a pixel border may have its stored twin in the neighbouring pixel)."""
    cos_d = np.maximum(np.cos(np.radians(dec_deg)), 1e-6)
    d_ra = np.minimum(tol_deg / cos_d, 180.0)
    parts = [pixels_of(ra_deg, dec_deg),
             pixels_of(np.mod(ra_deg + d_ra, 360.0), dec_deg), pixels_of(np.mod(ra_deg - d_ra, 360.0), dec_deg),
             pixels_of(ra_deg, np.clip(dec_deg + tol_deg, -90.0, 90.0)),
             pixels_of(ra_deg, np.clip(dec_deg - tol_deg, -90.0, 90.0))]
    return np.unique(np.concatenate(parts))


def _unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def _near_stored(ra_deg: np.ndarray, dec_deg: np.ndarray, good: np.ndarray, blocks: list[dict],
                 tol_deg: float) -> np.ndarray:
    """Per incoming star: True when a star of ``blocks`` lies within ``tol_deg`` (False for bad positions)."""
    from scipy.spatial import cKDTree

    stored_ra = np.concatenate([_decode_positions(d)[0] for d in blocks])
    stored_dec = np.concatenate([_decode_positions(d)[1] for d in blocks])
    out = np.zeros(ra_deg.size, dtype=bool)
    if stored_ra.size == 0:
        return out
    tree = cKDTree(_unit_vectors(stored_ra, stored_dec))
    chord = 2.0 * np.sin(np.radians(tol_deg) / 2.0)
    idx = np.flatnonzero(good)
    dist, _ = tree.query(_unit_vectors(ra_deg[idx], dec_deg[idx]), k=1, distance_upper_bound=chord)
    out[idx] = np.isfinite(dist)
    return out


def _decode_positions(doc: dict) -> tuple[np.ndarray, np.ndarray]:
    """ra and dec of a stored block, whatever its encoding (without decoding the other columns)."""
    n = int(doc["n"])
    if "data" in doc:
        buf = doc["data"]
        return (np.frombuffer(buf, dtype="<f8", count=n, offset=0), np.frombuffer(buf, dtype="<f8", count=n, offset=8 * n))
    return _floats(doc.get("ra"), n), _floats(doc.get("dec"), n)


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
        mags={b: np.concatenate([col(lambda c: c.mags.get(b), c) for c in chunks]) for b in bands},
        errs={b: np.concatenate([col(lambda c: c.errs.get(b), c) for c in chunks]) for b in bands},
        n_input=sum(c.n_input for c in chunks),
        pmra=np.concatenate([col(lambda c: c.pmra, c) for c in chunks]) if has_pm else None,
        pmdec=np.concatenate([col(lambda c: c.pmdec, c) for c in chunks]) if has_pm else None,
    )


def canonical_survey(name: str) -> str:
    """The stored spelling of a survey name (:func:`shared.refcat.surveys.canonical_name`): the canonical
    name of a registered survey or alias, else ``name`` trimmed."""
    return canonical_name(name)


def _restrict_bands(info: SurveyInfo, mapping: ColumnMapping) -> SurveyInfo:
    """The survey record lists the bands the table really had."""
    bands = tuple(mapping.band_names)
    systems = {b: s for b, s in mapping.systems.items()}
    derived = {b: s for b, s in info.derived.items() if b not in bands}
    return dc_replace(info, bands=bands, systems=systems, derived=derived)


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


def _cone_region(ra_deg, dec_deg, radius_deg) -> Cone:
    ra_deg, dec_deg, radius_deg = float(ra_deg), float(dec_deg), float(radius_deg)
    if not (np.isfinite(ra_deg) and np.isfinite(dec_deg) and -90.0 <= dec_deg <= 90.0):
        raise ValueError(f"invalid cone centre ({ra_deg}, {dec_deg})")
    if not (0.0 < radius_deg <= MAX_CONE_RADIUS_DEG):
        raise ValueError(f"cone radius must be in (0, {MAX_CONE_RADIUS_DEG}] deg, got {radius_deg}")
    return Cone(ra_deg % 360.0, dec_deg, radius_deg)


def _box_region(ra_min, ra_max, dec_min, dec_max) -> Box:
    values = [float(v) for v in (ra_min, ra_max, dec_min, dec_max)]
    if not all(np.isfinite(values)) or not (-90.0 <= values[2] < values[3] <= 90.0):
        raise ValueError(f"invalid box: RA {ra_min}..{ra_max}, Dec {dec_min}..{dec_max} (need dec_min < dec_max)")
    box = Box(values[0] % 360.0, values[1] % 360.0, values[2], values[3])
    if box.bounding_cone()[2] > MAX_CONE_RADIUS_DEG:
        raise ValueError(f"box too large: it must fit in a cone of {MAX_CONE_RADIUS_DEG} deg radius")
    return box


def _fraction(record: dict, field_moc) -> float:
    text = record.get("moc")
    if text is None:  # a record written before coverage maps existed: assume it covers everything
        return 1.0
    return cov.fraction(field_moc, cov.from_text(text))


def _assemble(record: dict, blocks: list[dict], region, *, bands=None, mag_limits=None,
              epoch_jyear: float | None = None) -> ReferenceStars:
    blocks.sort(key=lambda d: (d["hp"], d.get("import_id", ""), d.get("seq", 0)))
    all_bands = list(record.get("bands") or [])
    for doc in blocks:
        for key in (doc.get("cols") or doc):
            if key.startswith("mag_") and key[4:] not in all_bands:
                all_bands.append(key[4:])
    derived_cfg = dict(record.get("derived") or {})
    epoch = record.get("epoch")
    epoch = float(epoch) if epoch is not None else None
    if not blocks:
        return ReferenceStars(record["name"], str(record.get("version", "")), np.zeros(0), np.zeros(0), {}, {},
                              epoch=epoch)
    decoded = [_decode_columns(d) for d in blocks]
    sizes = [int(d["n"]) for d in blocks]

    def column(name: str) -> np.ndarray:
        return np.concatenate([c[name] if name in c else np.full(n, np.nan) for c, n in zip(decoded, sizes)])

    ra, dec = column("ra"), column("dec")
    has_pm = any("pmra" in c for c in decoded)
    pmra = pmdec = None
    if has_pm:
        pmra, pmdec = column("pmra"), column("pmdec")
        if epoch_jyear is not None and epoch is not None and float(epoch_jyear) != epoch:
            ra, dec = propagate(ra, dec, pmra, pmdec, float(epoch_jyear) - epoch)
            epoch = float(epoch_jyear)
    keep = region.contains(ra, dec)
    idx = np.flatnonzero(keep)
    mags: dict[str, np.ndarray] = {}
    errs: dict[str, np.ndarray] = {}
    for band in all_bands:
        mags[band] = column(f"mag_{band}")[idx]
        errs[band] = column(f"err_{band}")[idx]
    derived: frozenset[str] = frozenset()
    if derived_cfg:
        dm, de = derive_bands(mags, errs, derived_cfg)
        mags.update(dm)
        errs.update(de)
        derived = frozenset(dm)
    ra, dec = ra[idx], dec[idx]
    if pmra is not None:
        pmra, pmdec = pmra[idx], pmdec[idx]
    select = None
    if bands is not None:
        wanted = [b for b in bands if b in mags]
        mags = {b: mags[b] for b in wanted}
        errs = {b: errs[b] for b in wanted}
        derived = frozenset(b for b in derived if b in mags)
        select = np.zeros(ra.size, dtype=bool)
        for b in wanted:
            select |= np.isfinite(mags[b])
    if mag_limits:
        limit_mask = np.ones(ra.size, dtype=bool) if select is None else select
        for band, (bright, faint) in mag_limits.items():
            values = mags.get(band)
            if values is None:
                limit_mask &= False
                continue
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(values)
                if bright is not None:
                    ok &= values >= float(bright)
                if faint is not None:
                    ok &= values <= float(faint)
            limit_mask &= ok
        select = limit_mask
    if select is not None and not select.all():
        ra, dec = ra[select], dec[select]
        mags = {b: m[select] for b, m in mags.items()}
        errs = {b: e[select] for b, e in errs.items()}
        if pmra is not None:
            pmra, pmdec = pmra[select], pmdec[select]
    return ReferenceStars(
        survey=record["name"], version=str(record.get("version", "")), ra_deg=ra, dec_deg=dec, mags=mags,
        mag_errs=errs, derived=derived, epoch=epoch, pmra=pmra, pmdec=pmdec,
    )


__all__ = ["BLOCKS", "BLOCK_ROWS", "BUFFER_ROWS", "Box", "CHUNK_ROWS", "Cone", "ImportSession", "MAX_CONE_RADIUS_DEG",
           "DUPLICATE_RADIUS_ARCSEC", "QueryResult", "RefcatStore", "SURVEYS", "SurveyCoverage", "SurveyInfo", "canonical_survey",
           "derived_config", "is_synthetic_version"]
