"""The one registry of survey names: canonical names, the aliases people type, and what a name implies.

Pure data and functions, no I/O. Every place that takes a survey name from a person resolves it here,
the same way: ``cpcs refcat import --survey`` and ``--preset`` (through :mod:`shared.refcat.presets`),
the store's survey lookups and queries, and the survey part of a ``forceFilter`` request
(``services/calibration/science/_select.py``). What the store records, and what answers, plots and
exports report, is the canonical name.

Rules (case-insensitive, surrounding blanks ignored):

* a canonical name or one of its aliases is that survey (``REFCAT2``, ``ATLAS-RefCat2`` and ``atlas``
  are all ``ATLAS``; ``GAIA`` and ``Gaia-DR3`` are ``GaiaDR3``; ``APASS9`` and ``APASSDR9`` are
  ``APASS``);
* an alias that names a release (``APASSDR9``, ``PS1DR1``, ``SDSSDR12``, ``REFCAT2``) also fixes the
  version: an import that says another one is refused;
* any other name is a survey of its own, stored under that name as typed.

Canonical names are the short names of the original CPCS filter strings (``APASS/r``, ``GaiaDR3/G``),
kept so that existing requests and stored observations mean the same as before. ``SYNTH-DEMO`` is the
synthetic field of ``make up`` (the project's seeded simulator in the APASS DR9 column layout); no real
catalogue uses the name, and only simulated stars may be stored under it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: The survey name of the demo's synthetic reference field.
DEMO_SURVEY = "SYNTH-DEMO"


class RefcatError(ValueError):
    """A problem the operator can fix (unknown survey, missing column, unreadable file); one sentence.
    (Defined here, the bottom of the package, and re-exported by :mod:`shared.refcat.presets`.)"""


class SurveyNameError(RefcatError):
    """A survey name or version that contradicts the registry."""


@dataclass(frozen=True)
class Survey:
    """A survey the project knows by name.

    ``name`` is what the store records and what filter strings and answers use; ``title`` what
    astronomers call it; ``version`` the release imported when none is given; ``preset`` the key of
    its default column layout (:data:`shared.refcat.presets.PRESETS`); ``aliases`` other spellings;
    ``releases`` the aliases that name one release (alias -> version); ``synthetic`` True for a
    survey that may only hold simulated stars.
    """

    name: str
    title: str
    version: str
    preset: str
    aliases: tuple[str, ...] = ()
    releases: Mapping[str, str] = field(default_factory=dict)
    synthetic: bool = False


SURVEYS: tuple[Survey, ...] = (
    Survey("APASS", "APASS DR9 (AAVSO Photometric All-Sky Survey)", "DR9", "apass9",
           aliases=("APASS9", "APASSDR9", "APASS-DR9", "APASS_DR9", "APASS DR9", "apass9", "II/336", "II/336/apass9"),
           releases={"APASS9": "DR9", "APASSDR9": "DR9", "APASS-DR9": "DR9", "APASS_DR9": "DR9", "APASS DR9": "DR9",
                     "apass9": "DR9", "II/336/apass9": "DR9"}),
    Survey("ATLAS", "ATLAS RefCat2 (Tonry et al. 2018)", "RefCat2", "atlas-refcat2",
           aliases=("REFCAT2", "ATLAS-RefCat2", "ATLASRefCat2", "ATLAS_RefCat2", "ATLAS RefCat2", "ATLAS-REFCAT",
                    "J/ApJ/867/105", "J/ApJ/867/105/refcat2"),
           releases={"REFCAT2": "RefCat2", "ATLAS-RefCat2": "RefCat2", "ATLASRefCat2": "RefCat2",
                     "ATLAS_RefCat2": "RefCat2", "ATLAS RefCat2": "RefCat2", "J/ApJ/867/105/refcat2": "RefCat2"}),
    Survey("GaiaDR3", "Gaia DR3", "DR3", "gaiadr3",
           aliases=("GAIA", "Gaia-DR3", "Gaia_DR3", "Gaia DR3", "Gaia3", "I/355", "I/355/gaiadr3", "gaia-archive",
                    "gaiaarchive", "gaiadr3.gaia_source"),
           releases={"Gaia-DR3": "DR3", "Gaia_DR3": "DR3", "Gaia DR3": "DR3", "Gaia3": "DR3", "I/355/gaiadr3": "DR3",
                     "gaiadr3.gaia_source": "DR3"}),
    Survey("GaiaSP", "Gaia DR3 synthetic photometry (GSPC)", "DR3-GSPC", "gaiadr3-syntphot",
           aliases=("GSPC", "syntphot", "gaia-syntphot", "gaiadr3-syntphot", "GaiaDR3-GSPC", "I/360", "I/360/syntphot",
                    "gaiadr3.synthetic_photometry_gspc")),
    Survey("GaiaDR2", "Gaia DR2", "DR2", "gaiadr2-ldac",
           aliases=("Gaia-DR2", "Gaia_DR2", "Gaia DR2", "Gaia2", "scamp-gaiadr2", "gaiadr2-ldac", "I/345",
                    "I/345/gaia2"),
           releases={"Gaia-DR2": "DR2", "Gaia_DR2": "DR2", "Gaia DR2": "DR2", "Gaia2": "DR2", "I/345/gaia2": "DR2"}),
    Survey("PS1", "Pan-STARRS1 DR1", "DR1", "ps1",
           aliases=("PanSTARRS", "Pan-STARRS", "Pan-STARRS1", "PanSTARRS1", "PS1DR1", "PS1-DR1", "II/349",
                    "II/349/ps1"),
           releases={"PS1DR1": "DR1", "PS1-DR1": "DR1", "II/349/ps1": "DR1"}),
    Survey("SDSS", "SDSS DR12 photometric catalogue", "DR12", "sdss12",
           aliases=("SDSSDR12", "SDSS-DR12", "sdss12", "V/147", "V/147/sdss12", "SkyServer"),
           releases={"SDSSDR12": "DR12", "SDSS-DR12": "DR12", "sdss12": "DR12", "V/147/sdss12": "DR12"}),
    Survey("SkyMapper", "SkyMapper Southern Survey DR2", "DR2", "skymapper",
           aliases=("SMSS", "SkyMapperDR2", "SkyMapper-DR2", "II/358", "II/358/smss"),
           releases={"SkyMapperDR2": "DR2", "SkyMapper-DR2": "DR2", "II/358/smss": "DR2"}),
    Survey("2MASS", "2MASS point source catalogue", "PSC", "2mass",
           aliases=("TwoMASS", "2MASS-PSC", "II/246", "II/246/out")),
    Survey("VSTATLAS", "VST ATLAS DR4", "DR4", "vstatlas",
           aliases=("VST-ATLAS", "VST ATLAS", "VSTATLASDR4", "II/350", "II/350/vstatlas"),
           releases={"VSTATLASDR4": "DR4", "II/350/vstatlas": "DR4"}),
    Survey("OGLE3", "OGLE-III photometric maps", "III", "ogle3",
           aliases=("OGLE-III", "OGLEIII", "OGLE_III", "OGLE III")),
    Survey("USNO", "USNO-B1.0", "B1.0", "usnob1",
           aliases=("USNO-B1", "USNOB1", "USNO-B1.0", "USNO-B", "USNOB", "I/284", "I/284/out"),
           releases={"USNO-B1": "B1.0", "USNOB1": "B1.0", "USNO-B1.0": "B1.0", "I/284/out": "B1.0"}),
    Survey("DES", "Dark Energy Survey DR2", "DR2", "desdr2",
           aliases=("DESDR2", "DES-DR2", "DES DR2", "II/371", "II/371/des_dr2"),
           releases={"DESDR2": "DR2", "DES-DR2": "DR2", "DES DR2": "DR2", "II/371/des_dr2": "DR2"}),
    Survey(DEMO_SURVEY, "synthetic demo field of make up (simulated stars, not survey data)", "synthetic-demo-1",
           "apass9", aliases=("SYNTHDEMO", "SYNTH_DEMO"), synthetic=True),
)


def _norm(name: object) -> str:
    return " ".join(str(name or "").split()).lower()


def _index() -> dict[str, tuple[Survey, str | None]]:
    """Every spelling -> (survey, the release it names or None); an ambiguous spelling is a bug here."""
    out: dict[str, tuple[Survey, str | None]] = {}
    for survey in SURVEYS:
        releases = {_norm(k): v for k, v in survey.releases.items()}
        for spelling in (survey.name, *survey.aliases):
            key = _norm(spelling)
            if key in out and out[key][0] is not survey:
                raise AssertionError(f"survey name {spelling!r} is registered for {out[key][0].name} and {survey.name}")
            out[key] = (survey, releases.get(key))
    return out


_BY_NAME = _index()


@dataclass(frozen=True)
class ResolvedName:
    """What a survey name a person typed means: ``name`` (canonical, or the name as typed when the
    registry does not know it), ``survey`` (None for an unregistered name), ``release`` (the version
    the name itself says, e.g. DR9 for APASSDR9) and ``given`` (as typed, trimmed)."""

    name: str
    given: str
    survey: Survey | None = None
    release: str | None = None

    @property
    def registered(self) -> bool:
        return self.survey is not None


def lookup(name: str) -> Survey | None:
    """The registered survey called ``name`` (canonical name or alias, any case), or None."""
    hit = _BY_NAME.get(_norm(name))
    return hit[0] if hit else None


def resolve(name: str) -> ResolvedName:
    """What ``name`` means (see the module rules); an empty name is a :class:`SurveyNameError`."""
    given = " ".join(str(name or "").split())
    if not given:
        raise SurveyNameError("the survey name is empty")
    hit = _BY_NAME.get(_norm(given))
    if hit is None:
        return ResolvedName(given, given)
    survey, release = hit
    return ResolvedName(survey.name, given, survey, release)


def canonical_name(name: str) -> str:
    """The stored spelling of a survey name: the canonical name of a registered survey, else ``name`` trimmed."""
    given = " ".join(str(name or "").split())
    survey = lookup(given) if given else None
    return survey.name if survey else given


def same_survey(a: str, b: str) -> bool:
    """True when two names denote the same survey (``refcat2`` and ``ATLAS``; ``MyCat`` and ``mycat``)."""
    return _norm(canonical_name(a)) == _norm(canonical_name(b))


def import_version(resolved: ResolvedName, version: str | None, default: str) -> str:
    """The version an import records: the one given, else the release the name says, else the
    registered survey's, else ``default`` (the column layout's). A given version that contradicts the
    release the name says is refused."""
    given = (version or "").strip() or None
    if resolved.release and given and given.lower() != resolved.release.lower():
        raise SurveyNameError(
            f"survey name {resolved.given!r} means {resolved.name} {resolved.release}, but the import says version "
            f"{given!r}: name the survey {resolved.name} to import version {given}")
    return given or resolved.release or (resolved.survey.version if resolved.survey else None) or default


def check_synthetic(name: str, synthetic: bool) -> None:
    """Refuse real stars in a survey that only holds simulated ones (the demo field)."""
    survey = lookup(name)
    if survey is not None and survey.synthetic and not synthetic:
        raise SurveyNameError(f"{survey.name} is the name of the project's synthetic demo field and holds only "
                              f"simulated stars: import real stars under their survey's name")


def describe() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(canonical name, title, default version, aliases) of every registered survey, for listings."""
    return [(s.name, s.title, s.version, s.aliases) for s in SURVEYS]


__all__ = ["DEMO_SURVEY", "RefcatError", "ResolvedName", "SURVEYS", "Survey", "SurveyNameError", "canonical_name",
           "check_synthetic", "describe", "import_version", "lookup", "resolve", "same_survey"]
