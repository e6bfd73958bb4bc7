"""Private: the fitted bands, their request-independent order, and the choice among them."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.calibration.science.bands import UNDECLARED_EXCLUDED_BANDS, BandHint, band_hint, exact_band
from services.calibration.science.result import BandFitSummary, MatchedStars
from services.calibration.science.zeropoint import ZeropointFit
from shared.refcat.surveys import canonical_name, same_survey

_AUTO_WORDS = {"", "no", "auto", "automatic", "none", "any", "any/any"}
MIN_COMMON_STARS = 3  # fewest stars two bands must share for their likelihoods to be compared


@dataclass(frozen=True, eq=False)
class BandFit:
    """One survey/band: its summary and stars, and what selection and the target need."""

    summary: BandFitSummary
    matched: MatchedStars  # lean (``MatchedStars.lean``): the full record is built for the displayed band only
    cat_rows: NDArray[np.intp]  # cleaned-catalogue rows of the fitted stars
    star_ll: NDArray[np.float64] | None  # per fitted star, ln p under the constant zero point
    fit: ZeropointFit | None  # the model in use (constant; with a colour term once chosen)
    colour_pair: tuple[str, str] | None
    colours: NDArray[np.float64]  # per fitted star, reference colour (NaN where missing)
    diff: NDArray[np.float64]  # per fitted star, m_inst - m_ref
    err: NDArray[np.float64]  # per fitted star, combined error
    detail: dict[str, NDArray[Any]]  # per fitted star, what only the full record needs (``_bandfit.in_full``)


def fmt_arcsec(r: float) -> str:
    return f"{r:.1f}" if round(r, 1) == r else f"{r:.2f}"


def parse_force_filter(force_filter: str | None) -> tuple[str | None, str | None] | None:
    """Parse a CPCS filter request.

    Parameters
    ----------
    force_filter : str or None
        ``"no"`` (automatic), ``"SURVEY/band"``, ``"any/band"``, ``"SURVEY/any"``; a bare band name
        is read as ``"any/band"``. SURVEY is any name of the survey registry
        (:mod:`shared.refcat.surveys`, case-insensitive): ``REFCAT2/i`` is ``ATLAS/i``.

    Returns
    -------
    tuple or None
        None for automatic, else ``(survey or None, band or None)`` where None means any; the survey
        is its canonical name (an unregistered name as given).
    """
    text = "" if force_filter is None else str(force_filter).strip()
    if text.lower() in _AUTO_WORDS:
        return None
    if "/" in text:
        survey, band = (p.strip() for p in text.split("/", 1))
    else:
        survey, band = "any", text
    survey_v = None if survey.lower() in ("any", "") else canonical_name(survey)
    band_v = None if band.lower() in ("any", "") else band
    return survey_v, band_v


def _scatter_key(s: BandFitSummary) -> tuple[float, float, str, str]:
    return (s.scatter if s.scatter is not None else math.inf,
            s.zeropoint_err if s.zeropoint_err is not None else math.inf, s.survey, s.band)


def attempt_key(s: BandFitSummary) -> tuple[int, float, float, str, str]:
    """Failed fits: the one that got furthest (most stars, then smallest scatter, names)."""
    return (-s.npoints, *_scatter_key(s))


def _per_star_ll(fits: list[BandFit]) -> NDArray[np.float64]:
    """Every fit's ``ln p`` per cleaned-catalogue row (one row of the result per fit; NaN where the
    fit has no such star or no constant zero point), so that comparisons are masks, not set operations."""
    n_rows = max((int(f.cat_rows.max()) + 1 for f in fits if f.cat_rows.size), default=0)
    out = np.full((len(fits), n_rows), np.nan)
    for i, f in enumerate(fits):
        if f.star_ll is not None and f.cat_rows.size:
            out[i, f.cat_rows] = f.star_ll
    return out


def _compare(ll_a: NDArray[np.float64], ll_b: NDArray[np.float64]) -> tuple[int, float]:
    """Shared stars and ``sum ln p_a - sum ln p_b`` over them (rows of :func:`_per_star_ll`)."""
    both = np.isfinite(ll_a) & np.isfinite(ll_b)
    n = int(np.count_nonzero(both))
    if n == 0:
        return 0, 0.0
    return n, float(np.sum(ll_a[both]) - np.sum(ll_b[both]))


def _compatible_with(band: str) -> BandHint:
    """The bands a frame that looks like reference band ``band`` may be calibrated in."""
    if band == "G":  # Gaia G: a broad band; frames like it are clear/white or r- or V-like
        return BandHint(declared="G", key="G", tiers=(("G",), ("r", "V")))
    hint = band_hint(band)
    return hint if hint is not None else BandHint(declared=band, key=band, tiers=((band,),))


_GAIA_LOOKALIKES = {"BP": ("V", "g"), "RP": ("R", "I", "i")}


def identify_filter(fits: list[BandFit], *, min_stars: int, min_delta_lnl: float) -> tuple[BandHint | None, str]:
    """Infer the observed filter from the data when none is declared.

    Among the bands with a constant zero point (passing the gates or not), the one that wins most
    decisive likelihood comparisons (see :func:`rank_fits`) is taken as the observed band (BP and
    RP compete but are never taken: nobody observes through them), provided it has at least
    ``min_stars`` stars and beats decisively every band that is not compatible with it and shares
    at least three stars with it (BP does not count against V and g, nor RP against R, I and i).
    Its compatibility tiers then restrict the choice as a declared filter would.

    Returns
    -------
    (BandHint or None, str)
        The inferred compatibility (``declared`` = ``"inferred: SURVEY/band"``), or None and the
        reason it could not be inferred.
    """
    cands = [f for f in fits if f.star_ll is not None]
    if not any(f.summary.band not in UNDECLARED_EXCLUDED_BANDS for f in cands):
        return None, "no band could be fitted"
    pairs = {}
    score = [0] * len(cands)
    per_star = _per_star_ll(cands)
    for a in range(len(cands)):
        for b in range(a + 1, len(cands)):
            n, delta = _compare(per_star[a], per_star[b])
            pairs[a, b], pairs[b, a] = (n, delta), (n, -delta)
            if n >= MIN_COMMON_STARS and abs(delta) >= min_delta_lnl:
                win, lose = (a, b) if delta > 0.0 else (b, a)
                score[win] += 1
                score[lose] -= 1
    order = sorted(range(len(cands)), key=lambda i: (-score[i], -cands[i].summary.npoints,
                                                     *_scatter_key(cands[i].summary)))
    best = next(i for i in order if cands[i].summary.band not in UNDECLARED_EXCLUDED_BANDS)
    top = cands[best]
    if top.summary.npoints < min_stars:
        return None, (f"no filter was declared and {top.summary.npoints} stars are too few to tell which band "
                      f"the observation is in (need {min_stars})")
    compat = _compatible_with(top.summary.band)
    for j in order:
        other = cands[j]
        if j == best or other.summary.band in compat.bands:
            continue
        if top.summary.band in _GAIA_LOOKALIKES.get(other.summary.band, ()):
            continue  # BP is V- or g-like, RP R- or i-like: not a rival of those
        n, delta = pairs[best, j]
        if n >= MIN_COMMON_STARS and delta < min_delta_lnl:
            return None, (f"no filter was declared and the stars cannot tell {top.summary.filter} from "
                          f"{other.summary.filter}")
    inferred = BandHint(declared=f"inferred: {top.summary.filter}", key=compat.key, tiers=compat.tiers)
    return inferred, f"inferred from the data: {top.summary.filter}"


def rank_fits(fits: list[BandFit], min_delta_lnl: float = 3.0) -> list[BandFit]:
    """Order every fit, passing ones first, independently of what was requested.

    Passing fits are ordered by their wins minus losses in pairwise likelihood comparisons on the
    stars both share: the constant-zero-point mixture is a density of the instrumental magnitudes
    for each band, so ``sum ln p`` over the same stars says which reference band describes the
    observation best (the band the frame was taken in has no colour residuals). A comparison
    counts only when decisive (``|delta ln L| >= min_delta_lnl``) on at least three shared stars.
    Ties: more stars first (a better-determined zero point), then the smallest scatter.
    The returned summaries carry their ``rank`` (1 = preferred).
    """
    passing = [f for f in fits if f.summary.passed and f.star_ll is not None]
    score = [0] * len(passing)
    per_star = _per_star_ll(passing)
    for a in range(len(passing)):
        for b in range(a + 1, len(passing)):
            n, delta = _compare(per_star[a], per_star[b])
            if n >= MIN_COMMON_STARS and abs(delta) >= min_delta_lnl:
                win, lose = (a, b) if delta > 0.0 else (b, a)
                score[win] += 1
                score[lose] -= 1
    order = sorted(range(len(passing)),
                   key=lambda i: (-score[i], -passing[i].summary.npoints, *_scatter_key(passing[i].summary)))
    ranked = [replace(passing[i], summary=replace(passing[i].summary, rank=r + 1)) for r, i in enumerate(order)]
    by_id = {id(passing[i]): ranked[r] for r, i in enumerate(order)}
    return [by_id.get(id(f), f) for f in fits]


def _colour_stars(f: BandFit) -> int:
    """Stars of a fit with a reference colour (the colour term's sample)."""
    return int(np.count_nonzero(np.isfinite(f.colours))) if f.colour_pair is not None else 0


def select(fits: list[BandFit], forced: tuple[str | None, str | None] | None, requested: str,
           hint: BandHint | None, radius_arcsec: float, hint_label: str | None, min_colour_stars: int = 10
           ) -> tuple[BandFit | None, BandFit | None, str | None]:
    """The chosen fit, the fit to display when none is chosen, and the reason for failing.

    ``fits`` must come from :func:`rank_fits`. A forced filter only restricts the candidates; the
    declared (or inferred) filter's compatibility tiers apply to automatic and ``SURVEY/any``
    requests, and the first tier with a passing band wins (best ``rank`` within it). A compatible
    band other than the filter itself (R or G for r, g for V) is eligible only when it has the
    ``min_colour_stars`` stars with colours that a colour term needs: without one, the target's
    colour would shift its magnitude by an amount nobody measured.
    """
    if forced is None:
        candidates = list(fits)
    else:
        f_survey, f_band = forced
        candidates = [f for f in fits
                      if (f_survey is None or same_survey(f.summary.survey, f_survey))
                      and (f_band is None or f.summary.band == f_band)]
    used_hint = hint if forced is None or forced[1] is None else None
    passing = sorted((f for f in candidates if f.summary.passed), key=lambda f: f.summary.rank or 0)
    chosen: BandFit | None = None
    transformable = []
    if used_hint is not None:
        exact = exact_band(used_hint)
        # another band than the filter itself differs from it by a colour term: only with one
        transformable = [f for f in passing
                         if exact is None or f.summary.band == exact or _colour_stars(f) >= min_colour_stars]
        for tier in used_hint.tiers:
            pool = [f for f in transformable if f.summary.band in tier]
            if pool:
                chosen = pool[0]
                break
    else:
        pool = passing if forced is not None and forced[1] is not None else [
            f for f in passing if f.summary.band not in UNDECLARED_EXCLUDED_BANDS]
        chosen = pool[0] if pool else None

    reason = None
    if not fits:
        reason = "no reference catalogue covers the field"
    elif not candidates:
        available = ", ".join(sorted({f.summary.filter for f in fits}))
        reason = f"filter {requested!r} is not available; available: {available}"
    elif chosen is None:
        compatible = [f for f in candidates if used_hint is None or f.summary.band in used_hint.bands]
        if all(f.summary.n_matched == 0 for f in candidates):
            reason = f"no reference stars matched within {fmt_arcsec(radius_arcsec)} arcsec"
        elif used_hint is not None and passing:
            failed = [f for f in compatible if not f.summary.passed]
            best = min(failed, key=lambda f: attempt_key(f.summary)) if failed else None
            untransformable = sorted(f.summary.filter for f in passing
                                     if f.summary.band in used_hint.bands and f not in transformable)
            reason = (f"no band compatible with the {hint_label} "
                      f"({', '.join(used_hint.bands)}) passed the quality gates"
                      + (f" (best attempt: {best.summary.reason})" if best is not None else "")
                      + (f"; passing but without the {min_colour_stars} stars with colours a colour term "
                         f"needs: {', '.join(untransformable)}" if untransformable else "")
                      + ("; passing but incompatible: " + ", ".join(sorted(
                          f.summary.filter for f in passing if f.summary.band not in used_hint.bands))
                         if any(f.summary.band not in used_hint.bands for f in passing) else ""))
        else:
            pool = compatible or candidates
            reason = min(pool, key=lambda f: attempt_key(f.summary)).summary.reason
    display = chosen
    if chosen is None and candidates:
        pool = [f for f in candidates if used_hint is None or f.summary.band in used_hint.bands] or candidates
        display = min(pool, key=lambda f: attempt_key(f.summary))
    return chosen, display, reason
