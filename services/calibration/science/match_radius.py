"""Automatic matching radius from the astrometric offsets between a catalogue and a reference.

A generous first match (mutual nearest neighbours within ``first_radius_arcsec``) gives offsets
``dx = dRA cos(Dec)`` and ``dy = dDec``. Their distribution is a mixture: true pairs scatter as a
2-D Gaussian of width ``sigma`` around the catalogue's systematic offset ``(x0, y0)``; chance pairs
fall uniformly over the search disc. The mixture is fitted by maximum likelihood (EM, which for
this model is exact and monotone) and the radius is ``|(x0, y0)| + k sigma``, bounded.

This is the same mixture idea as the zero point (a Gaussian core plus a fixed, normalised
background); the background is uniform in area here because that is what chance coincidences
are, while the zero point's outliers are displaced magnitudes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from services.calibration.science import _kernel
from services.calibration.science.crossmatch import MutualNeighbours, match_one_to_one

__all__ = ["MatchRadius", "OffsetFit", "estimate_match_radius", "fit_offsets", "sky_offsets_arcsec"]


@dataclass(frozen=True)
class OffsetFit:
    """Outcome of :func:`fit_offsets` (all lengths in arcseconds).

    Attributes
    ----------
    ok : bool
        Whether the mixture was fitted.
    reason : str or None
        Why not, as a sentence.
    offset_x_arcsec, offset_y_arcsec : float
        Systematic offset (catalogue minus reference) east and north.
    sigma_arcsec : float
        Per-axis Gaussian width of the true pairs.
    sigma_err_arcsec : float
        1-sigma uncertainty of ``sigma_arcsec`` (``sigma / sqrt(2 n_good)``).
    chance_fraction : float
        Fitted fraction of chance pairs.
    n_pairs : int
        Pairs fitted.
    """

    ok: bool
    reason: str | None
    offset_x_arcsec: float
    offset_y_arcsec: float
    sigma_arcsec: float
    sigma_err_arcsec: float
    chance_fraction: float
    n_pairs: int


@dataclass(frozen=True)
class MatchRadius:
    """The matching radius used and how it was found.

    Attributes
    ----------
    radius_arcsec : float
        The radius.
    method : str
        ``"user"`` (given with the upload), ``"auto"`` (from the offsets) or ``"default"`` (the
        offsets could not be fitted; ``reason`` says why).
    reference : str or None
        The survey whose offsets were fitted.
    sigma_arcsec, offset_x_arcsec, offset_y_arcsec : float or None
        From the offset fit.
    n_pairs : int
        Pairs of the first match.
    reason : str or None
        Why the default was used.
    """

    radius_arcsec: float
    method: str
    reference: str | None = None
    sigma_arcsec: float | None = None
    offset_x_arcsec: float | None = None
    offset_y_arcsec: float | None = None
    n_pairs: int = 0
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def sky_offsets_arcsec(ra1_deg: ArrayLike, dec1_deg: ArrayLike, ra2_deg: ArrayLike,
                       dec2_deg: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Offsets of positions 1 from positions 2, east (``dRA cos Dec``) and north, in arcseconds.

    Uses the gnomonic projection about position 2, exact for the small separations of a match and
    correct across RA = 0/360 deg.
    """
    ra1, dec1, ra2, dec2 = (np.deg2rad(np.asarray(v, dtype=float)) for v in (ra1_deg, dec1_deg, ra2_deg, dec2_deg))
    dra = ra1 - ra2
    cos_c = np.sin(dec2) * np.sin(dec1) + np.cos(dec2) * np.cos(dec1) * np.cos(dra)
    x = np.cos(dec1) * np.sin(dra) / cos_c
    y = (np.cos(dec2) * np.sin(dec1) - np.sin(dec2) * np.cos(dec1) * np.cos(dra)) / cos_c
    k = 180.0 / np.pi * 3600.0
    return x * k, y * k


def fit_offsets(dx_arcsec: NDArray[np.float64], dy_arcsec: NDArray[np.float64], search_radius_arcsec: float, *,
                min_pairs: int = 8, max_iter: int = 500) -> OffsetFit:
    """Fit a 2-D Gaussian plus uniform chance pairs to match offsets.

    ``p(x, y) = (1 - f) N2((x, y) | (x0, y0), sigma^2 I) / A + f / (pi R^2)`` within the search disc of
    radius ``R``, where ``A = 1 - exp(-R^2 / (2 sigma^2))`` keeps the truncated Gaussian normalised
    (for a core near the centre of the disc). Maximised by expectation-maximisation from the median
    offset and the median pair distance.

    Parameters
    ----------
    dx_arcsec, dy_arcsec : array_like
        Offsets east and north in arcseconds.
    search_radius_arcsec : float
        Radius ``R`` of the first match.
    min_pairs : int, optional
        Fewest pairs for a fit.
    max_iter : int, optional
        Iteration limit of EM.

    Returns
    -------
    OffsetFit
        Never raises for bad data.
    """
    x = np.asarray(dx_arcsec, dtype=float)
    y = np.asarray(dy_arcsec, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    big_r = float(search_radius_arcsec)
    if n < max(int(min_pairs), 3):
        return OffsetFit(False, f"only {n} pairs within {big_r:g} arcsec, need {max(int(min_pairs), 3)}",
                         0.0, 0.0, 0.0, 0.0, 0.0, n)
    x0, y0 = float(np.median(x)), float(np.median(y))
    rr = np.hypot(x - x0, y - y0)
    sigma = max(float(np.median(rr)) / math.sqrt(2.0 * math.log(2.0)), 1e-3)  # Rayleigh median
    concentrated, x0, y0, sigma, f, n_good = _kernel.offsets_em(
        np.ascontiguousarray(x), np.ascontiguousarray(y), big_r, x0, y0, sigma, 0.1, int(max_iter))
    if not concentrated:
        return OffsetFit(False, "no concentration of pairs: the offsets look like chance matches",
                         x0, y0, sigma, 0.0, f, n)
    if sigma > big_r / 2.0:
        return OffsetFit(False, f"the offsets are as wide as the search radius (sigma {sigma:.2f} arcsec)",
                         x0, y0, sigma, 0.0, f, n)
    return OffsetFit(True, None, x0, y0, sigma, sigma / math.sqrt(2.0 * max(n_good, 1.0)), f, n)


def estimate_match_radius(
    cat_ra_deg: NDArray[np.float64],
    cat_dec_deg: NDArray[np.float64],
    ref_ra_deg: NDArray[np.float64],
    ref_dec_deg: NDArray[np.float64],
    *,
    reference: str | None = None,
    first_radius_arcsec: float = 5.0,
    k_sigma: float = 3.0,
    min_radius_arcsec: float = 0.5,
    max_radius_arcsec: float = 5.0,
    default_radius_arcsec: float = 2.0,
    min_pairs: int = 8,
    neighbours: MutualNeighbours | None = None,
) -> MatchRadius:
    """The matching radius from a generous first match against a reference.

    ``radius = clip(|offset| + k_sigma * sigma, min_radius_arcsec, max_radius_arcsec)``, with the
    systematic offset and per-axis width ``sigma`` from :func:`fit_offsets`. For a 2-D Gaussian,
    ``k_sigma = 3`` keeps 98.9 % of true counterparts (the original's 2 sigma kept 86 %).

    Parameters
    ----------
    cat_ra_deg, cat_dec_deg : array_like
        Catalogue positions in degrees.
    ref_ra_deg, ref_dec_deg : array_like
        Reference positions in degrees.
    reference : str, optional
        Name of the reference (for the record).
    first_radius_arcsec : float, optional
        Radius of the first, generous match.
    k_sigma : float, optional
        Width multiple.
    min_radius_arcsec, max_radius_arcsec : float, optional
        Bounds of the radius.
    default_radius_arcsec : float, optional
        The radius when the offsets cannot be fitted.
    min_pairs : int, optional
        Fewest first-match pairs for a fit.
    neighbours : MutualNeighbours, optional
        The neighbours of these two lists, found already with a reach of at least
        ``first_radius_arcsec`` (the first match is then taken from them).

    Returns
    -------
    MatchRadius
        ``method`` is ``"auto"`` or ``"default"``.
    """
    if neighbours is None:
        i_cat, i_ref, _ = match_one_to_one(cat_ra_deg, cat_dec_deg, ref_ra_deg, ref_dec_deg, first_radius_arcsec)
    else:
        i_cat, i_ref, _ = neighbours.match(first_radius_arcsec)
    n = int(i_cat.size)
    cat_ra = np.asarray(cat_ra_deg, dtype=float)
    cat_dec = np.asarray(cat_dec_deg, dtype=float)
    ref_ra = np.asarray(ref_ra_deg, dtype=float)
    ref_dec = np.asarray(ref_dec_deg, dtype=float)
    dx, dy = sky_offsets_arcsec(cat_ra[i_cat], cat_dec[i_cat], ref_ra[i_ref], ref_dec[i_ref])
    fit = fit_offsets(dx, dy, first_radius_arcsec, min_pairs=min_pairs)
    if not fit.ok:
        return MatchRadius(float(default_radius_arcsec), "default", reference, n_pairs=n,
                           reason=f"{reference or 'reference'}: {fit.reason}")
    radius = math.hypot(fit.offset_x_arcsec, fit.offset_y_arcsec) + k_sigma * fit.sigma_arcsec
    radius = float(np.clip(radius, min_radius_arcsec, max_radius_arcsec))
    return MatchRadius(radius, "auto", reference, sigma_arcsec=fit.sigma_arcsec,
                       offset_x_arcsec=fit.offset_x_arcsec, offset_y_arcsec=fit.offset_y_arcsec, n_pairs=n)
