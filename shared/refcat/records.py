"""Storage: the survey records of ``refcat_surveys`` and what an import says about a survey.

One document per survey: name, version, bands, photometric systems, epoch, rows, description,
synthetic flag, imported files, coverage (``moc``: MOC text; ``sky_percent``; ``coverage_rev``,
increased on every change), ``proper_motions``, ``derived`` (band -> transformation set of the bands
computed at query time), ``origins`` (``import``, ``archive:<provider>``), and while an import runs
its ``journal`` (file, size, mtime, chunks stored) and ``pending_imports`` (blocks of unfinished
imports, which queries ignore). Survey names are resolved through the survey registry
(:mod:`shared.refcat.surveys`): records carry canonical names, and lookups accept the aliases.

Pure: builds and describes records; :class:`shared.refcat.store.RefcatStore` reads and writes them.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace

from .healpix import NSIDE, ORDER
from .presets import ColumnMapping, Preset, RefcatError
from .surveys import canonical_name

SURVEYS = "refcat_surveys"


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
                    derive: Sequence[str] | None = None) -> SurveyInfo:
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
    """A version that says "synthetic" marks simulated stars."""
    return "synthetic" in (version or "").lower()


def summary_system(systems: Mapping[str, str]) -> str:
    """The one photometric system of all bands, else "mixed" (or "unknown" without bands)."""
    values = set(systems.values())
    return values.pop() if len(values) == 1 else ("mixed" if values else "unknown")


def utcnow() -> dt.datetime:
    """Now, in UTC, to the millisecond (what a BSON date holds)."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)  # BSON dates hold milliseconds


def new_record(name: str, info: SurveyInfo, now: dt.datetime) -> dict:
    """A survey record with no stars yet (status ready, empty coverage), from what ``info`` says."""
    return {
        "name": name, "version": info.version, "bands": list(info.bands),
        "systems": dict(info.systems), "system": summary_system(info.systems),
        "epoch": info.epoch, "rows": 0, "blocks": 0, "description": info.description,
        "synthetic": bool(info.synthetic), "source": info.source, "preset": info.preset,
        "healpix_order": ORDER, "healpix_nside": NSIDE, "status": "ready", "created_at": now, "imported_at": now,
        "files": [], "moc": "", "sky_percent": 0.0, "coverage_rev": 0, "proper_motions": False,
        "derived": dict(info.derived), "origins": [], "pending_imports": [],
    }


def canonical_survey(name: str) -> str:
    """The stored spelling of a survey name (:func:`shared.refcat.surveys.canonical_name`): the canonical
    name of a registered survey or alias, else ``name`` trimmed."""
    return canonical_name(name)


def restrict_bands(info: SurveyInfo, mapping: ColumnMapping) -> SurveyInfo:
    """``info`` limited to the bands of ``mapping``: the survey record lists the bands the table really had
    (a derived band that the table holds itself is no longer derived)."""
    bands = tuple(mapping.band_names)
    systems = {b: s for b, s in mapping.systems.items()}
    derived = {b: s for b, s in info.derived.items() if b not in bands}
    return dc_replace(info, bands=bands, systems=systems, derived=derived)


__all__ = ["SURVEYS", "SurveyInfo", "canonical_survey", "derived_config", "is_synthetic_version", "new_record",
           "restrict_bands", "summary_system", "utcnow"]
