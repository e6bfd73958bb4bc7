"""Query: cone and box searches over the store, epoch propagation, and per-survey coverage verdicts.

A query takes the pixels overlapping the region that the surveys' coverage maps include
(:mod:`shared.refcat.coverage`), reads their blocks through the store
(:meth:`shared.refcat.store.RefcatStore.fetch_blocks`), concatenates them into numpy arrays, moves
positions to the asked epoch where the survey has proper motions, derives the configured bands, and
trims to the exact region. Every survey asked gets a verdict (:class:`SurveyCoverage`): ``covered``,
``partial`` or ``outside`` (no block read). Nothing here talks to the database itself.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from typing import Protocol

import numpy as np

from . import coverage as cov
from .astrometry import propagate
from .blocks import DECODED, decode_columns
from .derived import derive_bands
from .healpix import cone_pixels, separation_deg
from .model import ReferenceStars

#: Largest cone served (about 1 800 pixels); calibration fields are far smaller.
MAX_CONE_RADIUS_DEG = 5.0
#: Proper motion assumed for the query margin when propagating (a few stars move faster; 10.4"/yr is
#: Barnard's star, the fastest).
MAX_PM_MASYR = 10_400.0


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


# ------------------------------------------------------------------------------------------- search


class BlockReader(Protocol):
    """What :func:`search` needs from a store (:class:`shared.refcat.store.RefcatStore` is one)."""

    async def ready_records(self, surveys: Sequence[str] | None) -> list[dict]: ...

    async def fetch_blocks(self, pixels: list[int], names: list[str], records: list[dict]) -> dict[str, list[dict]]: ...


async def search(store: BlockReader, region: Cone | Box, *, surveys: Sequence[str] | None = None,
                 bands: Sequence[str] | None = None,
                 mag_limits: Mapping[str, tuple[float | None, float | None]] | None = None,
                 epoch_jyear: float | None = None, records: list[dict] | None = None) -> QueryResult:
    """Stars in ``region`` and, per survey, how much of the region its coverage holds. A survey
    whose coverage misses the region entirely is reported ``outside`` and no block is read for it.
    ``records`` (survey records with coverage) skips reading them from the store; options as for
    :meth:`shared.refcat.store.RefcatStore.cone`."""
    ra_c, dec_c, radius = region.bounding_cone()
    if records is None:
        records = await store.ready_records(surveys)
    field_moc = cov.cone(ra_c, dec_c, radius)  # a box is tested through its bounding cone
    report: dict[str, SurveyCoverage] = {}
    wanted: list[dict] = []
    for rec in records:
        frac = coverage_fraction(rec, field_moc)
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
    blocks = await store.fetch_blocks(pixels, [r["name"] for r in wanted], wanted)
    out = []
    for rec in wanted:
        got = blocks.get(rec["name"])
        stars = assemble(rec, got or [], region, bands=bands, mag_limits=mag_limits, epoch_jyear=epoch_jyear)
        report[rec["name"]] = dc_replace(report[rec["name"]], n_stars=len(stars))
        if len(stars):
            out.append(stars)
    return QueryResult(out, report)


def cone_region(ra_deg, dec_deg, radius_deg) -> Cone:
    """A checked :class:`Cone` (RA wrapped to [0, 360)); ValueError for a bad centre or a radius outside
    (0, :data:`MAX_CONE_RADIUS_DEG`]."""
    ra_deg, dec_deg, radius_deg = float(ra_deg), float(dec_deg), float(radius_deg)
    if not (np.isfinite(ra_deg) and np.isfinite(dec_deg) and -90.0 <= dec_deg <= 90.0):
        raise ValueError(f"invalid cone centre ({ra_deg}, {dec_deg})")
    if not (0.0 < radius_deg <= MAX_CONE_RADIUS_DEG):
        raise ValueError(f"cone radius must be in (0, {MAX_CONE_RADIUS_DEG}] deg, got {radius_deg}")
    return Cone(ra_deg % 360.0, dec_deg, radius_deg)


def box_region(ra_min, ra_max, dec_min, dec_max) -> Box:
    """A checked :class:`Box`; ValueError when the limits are not finite, ``dec_min >= dec_max``, or it does
    not fit in a cone of :data:`MAX_CONE_RADIUS_DEG`."""
    values = [float(v) for v in (ra_min, ra_max, dec_min, dec_max)]
    if not all(np.isfinite(values)) or not (-90.0 <= values[2] < values[3] <= 90.0):
        raise ValueError(f"invalid box: RA {ra_min}..{ra_max}, Dec {dec_min}..{dec_max} (need dec_min < dec_max)")
    box = Box(values[0] % 360.0, values[1] % 360.0, values[2], values[3])
    if box.bounding_cone()[2] > MAX_CONE_RADIUS_DEG:
        raise ValueError(f"box too large: it must fit in a cone of {MAX_CONE_RADIUS_DEG} deg radius")
    return box


def coverage_fraction(record: dict, field_moc) -> float:
    """The fraction of ``field_moc`` that a survey record's coverage holds."""
    text = record.get("moc")
    if text is None:  # a record written before coverage maps existed: assume it covers everything
        return 1.0
    return cov.fraction(field_moc, cov.from_text(text))


def assemble(record: dict, blocks: list[dict], region, *, bands=None, mag_limits=None,
             epoch_jyear: float | None = None) -> ReferenceStars:
    """The stars of one survey (``record``) in ``region`` from its stored ``blocks`` (sorted in place):
    positions moved to ``epoch_jyear`` when the survey has proper motions, derived bands computed, then
    ``bands`` and ``mag_limits`` applied as :meth:`shared.refcat.store.RefcatStore.cone` describes."""
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
    decoded = [d[DECODED] if DECODED in d else decode_columns(d) for d in blocks]
    sizes = [int(d["n"]) for d in blocks]

    def column(name: str) -> np.ndarray:
        return np.concatenate([c[name] if name in c else np.full(n, np.nan)
                               for c, n in zip(decoded, sizes, strict=True)])

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


__all__ = ["BlockReader", "Box", "Cone", "MAX_CONE_RADIUS_DEG", "MAX_PM_MASYR", "QueryResult", "SurveyCoverage",
           "assemble", "box_region", "cone_region", "coverage_fraction", "search"]
