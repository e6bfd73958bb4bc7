"""Solve the WCS of a frame against reference (Gaia) positions, never trusting the header blindly.

Steps (pure and synchronous; ``astrometry.net`` runs as two subprocesses, see :mod:`.anet`):

1. detect the brightest sources (photutils; 2x2-binned on frames of 1500 pixels a side or more);
2. if the header has a celestial WCS, check it against the reference stars (allowing a shift of up
   to ``header_max_shift_arcsec`` found by voting): a WCS that puts reference stars on detected
   stars is refined; one that does not is **stale** and is replaced;
3. otherwise solve with astrometry.net on an index built from the reference cone, with the pixel
   scale (header, observatory record or argument) as a +-10 % hint, or a wide range if unknown (the
   index build starts before step 1 and runs while the sources are detected, unless
   ``overlap_index_build`` is off; a header WCS that fits stops it);
   :func:`solve_attempts` then tries, only if that fails, the wide range 0.1-30 arcsec/pixel around
   the event position and around the header pointing (:func:`plan_attempts`: binned or resampled
   frames keep the unbinned scale in their headers), within one time budget, and a failure names
   every attempt;
4. refine on all matched stars: TAN or TAN-SIP by linear least squares, SIP degree by BIC
   (:mod:`.match`, :mod:`.fit`); report the residual RMS in arcsec and the stars used.

Engine choice (measured on this 2-core machine, simulated 2k x 2k frame, 0.4"/px, 1 400 stars,
header WCS 0.3 deg off, event position as the hint, reference cone of twice the field radius):

==================  ===============================  ============================  ==================
engine              success                          no solution                   notes
==================  ===============================  ============================  ==================
astrometry.net      0.26 s median (3 index scales    bounded by ``time_limit_s``   parity, rotation,
(Debian 0.93)       built in parallel + solve-field;  (10 s; it is killed); a       scale range and
                    first try 0.28 + 0.22 s); 4k:    wrong 1 500-star index needs  position built in;
                    0.31 s                           ~9 s to exhaust               verified log-odds
astroalign 2.6.2    0.13 s (25 stars), 0.25 s (40),  2.7 s (25 stars), 18.5 s      similarity only:
(+ own projection)  0.48 s (60), right parity only   (40), 78 s (60): O(n^2)       both parities to
                                                     RANSAC in Python              try; unseeded
twirl 0.6.0         not measured: it requires astropy < 8 and installing it downgraded the
                    project's astropy 8.0 (undone at once)
==================  ===============================  ============================  ==================

Wide range (measured, same machine at load 7-10, frames of an unbinned 2k camera of 0.2"/px binned
2x to 20x, header keeping 0.2"/px, 22 800 reference stars in the 2 deg cone): 4-8 s per frame (hinted
attempt and wide attempt together; 17-19 indexes of sub-cones, :func:`.anet.index_plan`); an
unsolvable frame with three attempts fails in 43 s (budget 60 s).

astrometry.net wins: as fast when it succeeds, bounded when it fails, repeatable, and it handles
parity, unknown rotation and scale ranges itself. Refinement uses our linear TAN-SIP fit rather
than ``astropy.wcs.utils.fit_wcs_from_points`` (0.2-1.3 s per fit, see :mod:`.fit`).
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from astropy.wcs import WCS
from numpy.typing import ArrayLike

from services.astrometry.science import anet
from services.astrometry.science.fit import sky_separation_arcsec
from services.astrometry.science.match import check_wcs, refine_wcs
from shared.fitsimage.header import header_wcs as read_header_wcs
from shared.fitsimage.header import standardise_header
from shared.fitsimage.model import ImageFrame, ObservationHeader
from shared.fitsimage.sources import find_sources

__all__ = ["DEFAULT_PARAMS", "AstrometryParams", "AstrometryResult", "SolveAttempt", "field_radius_deg",
           "header_rejection", "plan_attempts", "reference_cone", "solve", "solve_attempts", "target_outside_reason"]


@dataclass(frozen=True)
class AstrometryParams:
    """Tunables of :func:`solve` (units in the names)."""

    detection_sigma: float = 5.0
    max_sources: int = 300
    bin_from_px: int = 1500
    match_radius_px: float = 3.0
    header_max_shift_arcsec: float = 60.0
    scale_tolerance: float = 0.1
    unknown_scale_range_arcsec: tuple[float, float] = (0.1, 10.0)
    max_sip_degree: int = 3
    min_stars: int = 6
    max_rms_arcsec: float = 2.0
    time_limit_s: float = 10.0
    wide_scale_range_arcsec: tuple[float, float] = (0.1, 30.0)
    wide_time_limit_s: float = 20.0
    max_wide_cone_radius_deg: float = 2.0
    max_hinted_cone_radius_deg: float = 5.0
    total_time_limit_s: float = 60.0
    footprint_margin_arcsec: float = 5.0
    overlap_index_build: bool = True  # build astrometry.net's indexes while the sources are detected

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (provenance)."""
        d = asdict(self)
        d["unknown_scale_range_arcsec"] = list(self.unknown_scale_range_arcsec)
        d["wide_scale_range_arcsec"] = list(self.wide_scale_range_arcsec)
        return d


#: The defaults, shared by every function that takes ``params`` (frozen, so safe as an argument default).
DEFAULT_PARAMS = AstrometryParams()


@dataclass(frozen=True)
class SolveAttempt:
    """One try of :func:`solve_attempts`: a pixel-scale range searched with a reference cone around a centre.

    ``centre`` names the centre for people (``"the event position"``, ``"the header pointing"``).
    """

    scale_low_arcsec: float
    scale_high_arcsec: float
    centre: str
    centre_ra_deg: float
    centre_dec_deg: float
    cone_radius_deg: float
    wide: bool = False
    time_limit_s: float = 10.0

    def describe(self) -> str:
        """``"0.1-30 arcsec/pixel around the event position (150.0000, +20.0000) with reference stars within
        2.00 deg"``."""
        return (f"{self.scale_low_arcsec:.3g}-{self.scale_high_arcsec:.3g} arcsec/pixel around {self.centre} "
                f"({self.centre_ra_deg:.4f}, {self.centre_dec_deg:+.4f}) with reference stars within "
                f"{self.cone_radius_deg:.2f} deg")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AstrometryResult:
    """Outcome of :func:`solve`. ``status`` is ``"solved"`` or ``"failed"`` (``reason`` says why).

    ``header_wcs`` tells what the header WCS was: ``"absent"``, ``"verified"`` (used and refined),
    ``"corrected"`` (right but shifted), ``"stale"`` (replaced; ``header_wcs_offset_arcsec`` is how
    far its centre was from the solution) or ``"unusable"``.
    """

    status: str
    reason: str | None
    method: str | None
    wcs: WCS | None
    rms_arcsec: float | None
    n_stars: int
    n_sources: int
    n_references: int
    sip_degree: int | None
    pixel_scale_arcsec: float | None
    rotation_deg: float | None
    flipped: bool | None
    centre_ra_deg: float | None
    centre_dec_deg: float | None
    header_wcs: str
    header_wcs_offset_arcsec: float | None
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    attempts: tuple[dict[str, Any], ...] = ()
    retryable: bool = True

    @property
    def wcs_header(self) -> dict[str, Any]:
        """The solved WCS as FITS keywords (TAN-SIP with A/B and AP/BP), plain types."""
        if self.wcs is None:
            return {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = self.wcs.to_header(relax=True)
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in header.items()}

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain types (``wcs`` as ``wcs_header``)."""
        out = {k: v for k, v in asdict(self).items() if k != "wcs"}
        out["wcs_header"] = self.wcs_header
        out["notes"] = list(self.notes)
        out["attempts"] = [dict(a) for a in self.attempts]
        return out


def field_radius_deg(shape: tuple[int, int], pixel_scale_arcsec: float) -> float:
    """Half the diagonal of a frame of ``shape`` (ny, nx) at the pixel scale."""
    ny, nx = shape
    return math.hypot(nx, ny) / 2.0 * pixel_scale_arcsec / 3600.0


def reference_cone(shape: tuple[int, int], *, pixel_scale_arcsec: float | None, hint_ra_deg: float,
                   hint_dec_deg: float, hint_is_centre: bool = False,
                   unknown_scale_radius_deg: float = 1.0) -> tuple[float, float, float]:
    """The cone of reference stars :func:`solve` needs around a hint.

    Parameters
    ----------
    shape : (int, int)
        ``(ny, nx)`` of the frame.
    pixel_scale_arcsec : float or None
        Pixel scale, if known.
    hint_ra_deg, hint_dec_deg : float
        The hint: the event position (somewhere in the field) or a trusted pointing.
    hint_is_centre : bool, optional
        True when the hint is the field centre (within a tenth of the field); False (default) when it
        is only known to be in the field, like the event position.
    unknown_scale_radius_deg : float, optional
        Radius used when the pixel scale is unknown.

    Returns
    -------
    (ra_deg, dec_deg, radius_deg)
        ``radius = 1.05 * field radius * (1.1 if the hint is the centre else 2)``.
    """
    if not pixel_scale_arcsec:
        return float(hint_ra_deg), float(hint_dec_deg), float(unknown_scale_radius_deg)
    r = field_radius_deg(shape, pixel_scale_arcsec)
    return float(hint_ra_deg), float(hint_dec_deg), 1.05 * r * (1.1 if hint_is_centre else 2.0)


def _geometry(wcs: WCS, shape: tuple[int, int]) -> dict[str, Any]:
    ny, nx = shape
    m = wcs.pixel_scale_matrix
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ra, dec = wcs.all_pix2world([[(nx - 1) / 2.0, (ny - 1) / 2.0]], 0)[0]
    return {
        "pixel_scale_arcsec": float(math.sqrt(abs(np.linalg.det(m))) * 3600.0),
        "rotation_deg": float(math.degrees(math.atan2(m[0, 1], m[1, 1])) % 360.0),
        "flipped": bool(np.linalg.det(m) > 0),
        "centre_ra_deg": float(ra) % 360.0,
        "centre_dec_deg": float(dec),
    }


def _failed(reason: str, **kw: Any) -> AstrometryResult:
    base: dict[str, Any] = dict(
        status="failed", reason=reason, method=None, wcs=None, rms_arcsec=None, n_stars=0, n_sources=0,
        n_references=0, sip_degree=None, pixel_scale_arcsec=None, rotation_deg=None, flipped=None,
        centre_ra_deg=None, centre_dec_deg=None, header_wcs="absent", header_wcs_offset_arcsec=None)
    base.update(kw)
    return AstrometryResult(**base)


def solve(frame: ImageFrame | np.ndarray, *, references_ra_deg: ArrayLike, references_dec_deg: ArrayLike,
          references_mag: ArrayLike | None = None,
          hint_ra_deg: float | None = None, hint_dec_deg: float | None = None,
          pixel_scale_arcsec: float | None = None, record: ObservationHeader | None = None,
          header_wcs: WCS | None | str = "from-frame", params: AstrometryParams = DEFAULT_PARAMS,
          attempt: SolveAttempt | None = None, header_rejected: str | None = None) -> AstrometryResult:
    """Solve the WCS of a frame against reference stars.

    Parameters
    ----------
    frame : ImageFrame or numpy.ndarray
        The image (an array has no header: pass ``header_wcs`` and ``pixel_scale_arcsec``).
    references_ra_deg, references_dec_deg : array_like
        Reference positions (Gaia from the store), e.g. the cone of :func:`reference_cone`.
    references_mag : array_like, optional
        Their magnitudes (brightest are used first).
    hint_ra_deg, hint_dec_deg : float, optional
        A position in the field (the event) or the pointing; only narrows the search.
    pixel_scale_arcsec : float, optional
        Pixel scale hint; default from ``record`` (header keywords, header WCS, observatory).
    record : ObservationHeader, optional
        The standardised header (default: standardised from ``frame.header`` without observatory).
    header_wcs : astropy.wcs.WCS or None, optional
        The WCS to check first; default the frame header's.
    params : AstrometryParams, optional
    attempt : SolveAttempt, optional
        The scale range and centre astrometry.net searches (see :func:`plan_attempts`); default the
        scale hint +-10 % around the hint (or the unknown-scale range).
    header_rejected : str, optional
        Why an earlier attempt rejected the header WCS: it is not checked again.

    Returns
    -------
    AstrometryResult
        Never raises for bad data: ``status == "failed"`` with a reason instead (``retryable`` False when
        another scale or centre cannot help: too few stars detected, no astrometry.net).
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    notes: list[str] = []
    data = frame.data if isinstance(frame, ImageFrame) else np.asarray(frame, dtype=np.float32)
    shape = (int(data.shape[0]), int(data.shape[1]))
    if record is None and isinstance(frame, ImageFrame):
        record = standardise_header(frame.header)
    if isinstance(header_wcs, str):
        header_wcs = read_header_wcs(frame.header) if isinstance(frame, ImageFrame) else None
    scale = pixel_scale_arcsec or (record.pixel_scale_arcsec if record is not None else None)
    p = params.to_dict()

    ref_ra = np.asarray(references_ra_deg, dtype=float).ravel()
    ref_dec = np.asarray(references_dec_deg, dtype=float).ravel()
    ref_mag = None if references_mag is None else np.asarray(references_mag, dtype=float).ravel()
    good = np.isfinite(ref_ra) & np.isfinite(ref_dec)
    ref_ra, ref_dec = ref_ra[good], ref_dec[good]
    if ref_mag is not None:
        ref_mag = ref_mag[good]
        order = np.argsort(np.where(np.isfinite(ref_mag), ref_mag, np.inf), kind="stable")
        ref_ra, ref_dec, ref_mag = ref_ra[order], ref_dec[order], ref_mag[order]
    h_state = "absent" if header_wcs is None else "unusable"
    if ref_ra.size < params.min_stars:
        return _failed(f"only {ref_ra.size} reference stars around the field: the reference store does not cover "
                       "it (import a Gaia catalogue of this area)", n_references=int(ref_ra.size), header_wcs=h_state,
                       params=p)

    # astrometry.net's indexes depend only on the reference stars and the scale range: when the
    # header WCS may not do, their build starts now and runs while the sources are detected
    early, t_start = None, time.perf_counter()
    if params.overlap_index_build and anet.available() and not (attempt is not None and attempt.wide):
        pre_scale = scale
        if header_wcs is not None and header_rejected is None and not scale:  # the scale a rejected header leaves
            try:
                pre_scale = math.sqrt(abs(np.linalg.det(header_wcs.pixel_scale_matrix))) * 3600.0
            except (ValueError, np.linalg.LinAlgError):
                pre_scale = None
        lo, hi, _, _, _, cone_centre = _anet_request(shape, pre_scale, params, attempt, hint_ra_deg, hint_dec_deg)
        early = anet.start_index_build(shape=shape, ref_ra_deg=ref_ra, ref_dec_deg=ref_dec, ref_mag=ref_mag,
                                       scale_low_arcsec=lo, scale_high_arcsec=hi, cone_centre=cone_centre)
    t_start = time.perf_counter() - t_start  # counted with astrometry.net's time
    try:
        t = time.perf_counter()
        bin_factor = 2 if min(shape) >= params.bin_from_px else 1
        sources, _ = find_sources(data, threshold_sigma=params.detection_sigma, bin_factor=bin_factor,
                                  max_sources=params.max_sources, measure_shape=False)
        timings["detect"] = time.perf_counter() - t
        sx, sy = sources.x, sources.y
        common: dict[str, Any] = dict(n_sources=len(sources), n_references=int(ref_ra.size), params=p)
        if len(sources) < params.min_stars:
            return _failed(f"only {len(sources)} stars detected above {params.detection_sigma:g} sigma: the frame is "
                           "too shallow, empty or cloudy to solve", header_wcs=h_state, retryable=False, **common)

        start_wcs, method, shift = None, None, (0.0, 0.0)
        if header_wcs is not None and header_rejected is not None:
            h_state = "stale"
            notes.append(f"header WCS rejected: {header_rejected}")
        elif header_wcs is not None:
            t = time.perf_counter()
            h_scale = math.sqrt(abs(np.linalg.det(header_wcs.pixel_scale_matrix))) * 3600.0
            check = check_wcs(header_wcs, sx, sy, ref_ra, ref_dec, shape, match_radius_px=params.match_radius_px,
                              max_shift_px=params.header_max_shift_arcsec / h_scale, min_stars=params.min_stars)
            timings["check_header_wcs"] = time.perf_counter() - t
            if check.ok:
                start_wcs, shift = header_wcs, check.shift_px
                moved = math.hypot(*shift) * h_scale
                h_state = "verified" if moved < 2.0 * params.match_radius_px * h_scale else "corrected"
                method = "header WCS" + (f" (shifted by {moved:.1f} arcsec)" if h_state == "corrected" else "")
            else:
                h_state = "stale"
                notes.append(f"header WCS rejected: {check.reason}")
                scale = scale or h_scale

        if start_wcs is None:
            if not anet.available():
                return _failed("the header has no WCS that matches the stars, and astrometry.net (the Debian package "
                               "'astrometry.net') is not installed on this server to solve the field",
                               header_wcs=h_state, notes=tuple(notes), retryable=False, **common)
            t = time.perf_counter()
            lo, hi, hint, radius, time_limit_s, cone_centre = _anet_request(shape, scale, params, attempt, hint_ra_deg,
                                                                            hint_dec_deg)
            outcome = anet.solve_field(sx, sy, sources.flux, shape=shape, ref_ra_deg=ref_ra, ref_dec_deg=ref_dec,
                                       ref_mag=ref_mag, scale_low_arcsec=lo, scale_high_arcsec=hi,
                                       hint=hint if radius else None, hint_radius_deg=radius,
                                       time_limit_s=time_limit_s, cone_centre=cone_centre, index_build=early)
            early_given = early is not None
            early = None  # closed by solve_field
            timings["astrometry.net"] = time.perf_counter() - t + (t_start if early_given else 0.0)
            if outcome.wcs is None:
                return _failed(outcome.reason or "astrometry.net found no solution", header_wcs=h_state,
                               notes=tuple(notes), timings_s=timings, **common)
            start_wcs, method = outcome.wcs, "astrometry.net"
            if outcome.log_odds is not None:
                notes.append(f"astrometry.net log-odds {outcome.log_odds:.1f}")
            if cone_centre is not None:  # a wide cone: refine on the stars of the solved footprint only
                g = _geometry(start_wcs, shape)
                near = sky_separation_arcsec(ref_ra, ref_dec, g["centre_ra_deg"], g["centre_dec_deg"]) <= (
                    1.2 * field_radius_deg(shape, g["pixel_scale_arcsec"]) * 3600.0)
                ref_ra, ref_dec = ref_ra[near], ref_dec[near]

        t = time.perf_counter()
        fit, why = refine_wcs(start_wcs, sx, sy, ref_ra, ref_dec, shape, shift_px=shift,
                              start_radius_px=max(params.match_radius_px, 5.0), max_sip_degree=params.max_sip_degree,
                              min_stars=params.min_stars)
        timings["refine"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        if fit is None:
            return _failed(f"the {method} solution could not be refined: {why}", header_wcs=h_state, notes=tuple(notes),
                           timings_s=timings, **common)
        if fit.rms_arcsec > params.max_rms_arcsec:
            return _failed(f"the WCS residuals are {fit.rms_arcsec:.2f} arcsec RMS on {fit.n_stars} stars, above the "
                           f"{params.max_rms_arcsec:g} arcsec accepted", header_wcs=h_state, notes=tuple(notes),
                           timings_s=timings, **common)
        geo = _geometry(fit.wcs, shape)
        offset = None
        if header_wcs is not None:
            ny, nx = shape
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                h_ra, h_dec = header_wcs.all_pix2world([[(nx - 1) / 2.0, (ny - 1) / 2.0]], 0)[0]
            offset = float(sky_separation_arcsec(h_ra, h_dec, geo["centre_ra_deg"], geo["centre_dec_deg"]))
        return AstrometryResult(status="solved", reason=None, method=method, wcs=fit.wcs, rms_arcsec=fit.rms_arcsec,
                                n_stars=fit.n_stars, sip_degree=fit.sip_degree, header_wcs=h_state,
                                header_wcs_offset_arcsec=offset, timings_s=timings, notes=tuple(notes), **geo, **common)
    finally:
        if early is not None:  # not needed (the header WCS fits, or too few sources)
            early.close()


def _anet_request(shape: tuple[int, int], scale: float | None, params: AstrometryParams, attempt: SolveAttempt | None,
                  hint_ra_deg: float | None, hint_dec_deg: float | None
                  ) -> tuple[float, float, tuple[float, float] | None, float | None, float,
                             tuple[float, float] | None]:
    """``(scale_low, scale_high, hint, hint_radius, time_limit_s, cone_centre)`` of the astrometry.net call."""
    lo, hi = ((scale * (1 - params.scale_tolerance), scale * (1 + params.scale_tolerance)) if scale
              else params.unknown_scale_range_arcsec)
    hint = (hint_ra_deg, hint_dec_deg) if hint_ra_deg is not None and hint_dec_deg is not None else None
    radius = 2.2 * field_radius_deg(shape, hi) if hint is not None and scale else None
    time_limit_s, cone_centre = params.time_limit_s, None
    if attempt is not None:
        lo, hi, time_limit_s = attempt.scale_low_arcsec, attempt.scale_high_arcsec, attempt.time_limit_s
        hint = (attempt.centre_ra_deg, attempt.centre_dec_deg)
        radius = None if attempt.wide else 2.2 * field_radius_deg(shape, hi)
        cone_centre = hint if attempt.wide else None
    return lo, hi, hint, radius, time_limit_s, cone_centre


def _distance_text(arcsec: float) -> str:
    if arcsec < 120.0:
        return f"{arcsec:.1f} arcsec"
    if arcsec < 7200.0:
        return f"{arcsec / 60.0:.1f} arcmin"
    return f"{arcsec / 3600.0:.2f} deg"


def plan_attempts(shape: tuple[int, int], *, pixel_scale_arcsec: float | None, event_ra_deg: float,
                  event_dec_deg: float, pointing_ra_deg: float | None = None, pointing_dec_deg: float | None = None,
                  params: AstrometryParams = DEFAULT_PARAMS) -> list[SolveAttempt]:
    """The tries of :func:`solve_attempts`, in order, each with the reference cone it needs.

    1. the hinted scale +-``scale_tolerance`` around the event position (the cone of
       :func:`reference_cone`, at most ``max_hinted_cone_radius_deg``) -- the normal path;
    2. the wide range ``wide_scale_range_arcsec`` around the event position: a binned or resampled
       frame whose header keeps the unbinned scale (or a wrong focal length) lands here. Its cone is
       what the largest field of the range reaches from the event (twice its half-diagonal), at most
       ``max_wide_cone_radius_deg``;
    3. the same around the header pointing, when it is further than half that cone from the event (a
       frame that is not where the event is then solves, and the footprint check says so).

    Without a scale hint the first try is skipped.
    """
    attempts: list[SolveAttempt] = []
    event = "the event position"
    if pixel_scale_arcsec:
        tol = params.scale_tolerance
        _, _, radius = reference_cone(shape, pixel_scale_arcsec=pixel_scale_arcsec, hint_ra_deg=event_ra_deg,
                                      hint_dec_deg=event_dec_deg)
        attempts.append(SolveAttempt(pixel_scale_arcsec * (1 - tol), pixel_scale_arcsec * (1 + tol), event,
                                     float(event_ra_deg), float(event_dec_deg),
                                     min(radius, params.max_hinted_cone_radius_deg), False, params.time_limit_s))
    lo, hi = params.wide_scale_range_arcsec
    wide_radius = min(params.max_wide_cone_radius_deg, 1.05 * 2.0 * field_radius_deg(shape, hi))
    attempts.append(SolveAttempt(lo, hi, event, float(event_ra_deg), float(event_dec_deg), wide_radius, True,
                                 params.wide_time_limit_s))
    if pointing_ra_deg is not None and pointing_dec_deg is not None:
        apart = float(sky_separation_arcsec(event_ra_deg, event_dec_deg, pointing_ra_deg, pointing_dec_deg)) / 3600.0
        if apart > wide_radius / 2.0:
            attempts.append(SolveAttempt(lo, hi, "the header pointing", float(pointing_ra_deg) % 360.0,
                                         float(pointing_dec_deg), wide_radius, True, params.wide_time_limit_s))
    return attempts


def solve_attempts(frame: ImageFrame, attempts: list[SolveAttempt],
                   references: Callable[[SolveAttempt], tuple[ArrayLike, ArrayLike, ArrayLike | None] | None], *,
                   record: ObservationHeader | None = None, params: AstrometryParams = DEFAULT_PARAMS,
                   earlier: list[dict[str, Any]] | None = None, budget_s: float | None = None,
                   header_rejected: str | None = None) -> AstrometryResult:
    """Try the attempts in order until one solves; the failure names every try and what happened.

    Parameters
    ----------
    frame : ImageFrame
    attempts : list of SolveAttempt
        From :func:`plan_attempts` (or the rest of it).
    references : callable
        ``references(attempt) -> (ra_deg, dec_deg, mag or None)`` the reference stars of the attempt's
        cone (None or empty arrays when there are none).
    record : ObservationHeader, optional
    params : AstrometryParams, optional
    earlier : list of dict, optional
        Attempts already made (``SolveAttempt.to_dict()`` plus ``outcome``), for the reason and the record.
    budget_s : float, optional
        Time left for all the attempts (default ``params.total_time_limit_s``); an attempt that would
        start with less than 2 s left is not made, and the reason says so.
    header_rejected : str, optional
        Why an earlier attempt rejected the header WCS (it is not checked again).

    Returns
    -------
    AstrometryResult
        The first solution (``attempts`` lists the tries, notes say which one solved), or a failure whose
        reason lists each try in one sentence.
    """
    deadline = time.perf_counter() + (params.total_time_limit_s if budget_s is None else budget_s)
    tried: list[dict[str, Any]] = [dict(a) for a in (earlier or [])]
    last: AstrometryResult | None = None
    for attempt in attempts:
        left = deadline - time.perf_counter()
        if left < 2.0:
            tried.append({**attempt.to_dict(), "outcome": f"not tried: the {params.total_time_limit_s:g} s time "
                                                          "limit of the astrometry was spent"})
            continue
        if left < attempt.time_limit_s:
            attempt = SolveAttempt(**{**attempt.to_dict(), "time_limit_s": left})
        refs = references(attempt)
        ra: ArrayLike
        dec: ArrayLike
        mag: ArrayLike | None
        ra, dec, mag = refs if refs is not None else ([], [], None)
        result = solve(frame, references_ra_deg=ra, references_dec_deg=dec, references_mag=mag,
                       hint_ra_deg=attempt.centre_ra_deg, hint_dec_deg=attempt.centre_dec_deg, record=record,
                       params=params, attempt=attempt, header_rejected=header_rejected)
        if result.status == "solved":
            tried.append({**attempt.to_dict(), "outcome": "solved"})
            notes = list(result.notes)
            if len(tried) > 1:
                notes.append(f"solved at {attempt.describe()} after " + "; ".join(
                    f"{_describe(a)}: {_short(a)}" for a in tried[:-1]))
            hinted = record.pixel_scale_arcsec if record is not None else None
            if (hinted and result.pixel_scale_arcsec
                    and abs(result.pixel_scale_arcsec / hinted - 1) > params.scale_tolerance):
                notes.append(f"the header or observatory pixel scale ({hinted:.4g} arcsec/pixel) is wrong: the frame "
                             f"has {result.pixel_scale_arcsec:.4g} arcsec/pixel "
                             f"({result.pixel_scale_arcsec / hinted:.3g} times it; binned or resampled)")
            return _replace(result, notes=tuple(notes), attempts=tuple(tried))
        tried.append({**attempt.to_dict(), "outcome": result.reason})
        last = result
        header_rejected = header_rejected or header_rejection(result.notes)
        if not result.retryable:
            break
    if last is not None and not last.retryable:
        return _replace(last, attempts=tuple(tried))
    reason = "no astrometric solution: tried " + "; then ".join(f"{_describe(a)}: {_short(a)}" for a in tried)
    base = last if last is not None else _failed(reason, params=params.to_dict())
    return _replace(base, reason=reason, attempts=tuple(tried))


def header_rejection(notes: Sequence[str] | None) -> str | None:
    """Why a result's header WCS was rejected (from its notes), or None."""
    prefix = "header WCS rejected: "
    return next((n[len(prefix):] for n in notes or () if n.startswith(prefix)), None)


def _describe(attempt: dict[str, Any]) -> str:
    keys = ("scale_low_arcsec", "scale_high_arcsec", "centre", "centre_ra_deg", "centre_dec_deg", "cone_radius_deg",
            "wide", "time_limit_s")
    return SolveAttempt(**{k: attempt[k] for k in keys}).describe()


def _short(attempt: dict[str, Any]) -> str:
    """The outcome without the scale range the attempt already names."""
    lo, hi = attempt["scale_low_arcsec"], attempt["scale_high_arcsec"]
    return str(attempt["outcome"]).replace(f" at {lo:.3g}-{hi:.3g} arcsec/pixel", "")


def _replace(result: AstrometryResult, **changes: Any) -> AstrometryResult:
    from dataclasses import replace

    return replace(result, **changes)


def target_outside_reason(wcs: WCS, shape: tuple[int, int], ra_deg: float, dec_deg: float, *,
                          margin_arcsec: float = 5.0, what: str = "the event") -> str | None:
    """None when (ra, dec) falls on the frame (within ``margin_arcsec`` of its edge), else a sentence with
    the position, the frame centre and their distance."""
    ny, nx = shape
    geo = _geometry(wcs, shape)
    scale = geo["pixel_scale_arcsec"]
    dist = float(sky_separation_arcsec(ra_deg, dec_deg, geo["centre_ra_deg"], geo["centre_dec_deg"]))
    reach = field_radius_deg(shape, scale) * 3600.0
    inside = False
    if dist <= reach + margin_arcsec:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                x, y = wcs.all_world2pix([[ra_deg, dec_deg]], 0)[0]
            except Exception:  # no convergence far out of the frame
                x, y = wcs.wcs_world2pix([[ra_deg, dec_deg]], 0)[0]
        m = margin_arcsec / scale
        inside = bool(-0.5 - m <= x <= nx - 0.5 + m and -0.5 - m <= y <= ny - 0.5 + m)
    if inside:
        return None
    return (f"{what} (RA {ra_deg:.5f}, Dec {dec_deg:+.5f} deg) is not in the frame: the solved frame is centred at "
            f"RA {geo['centre_ra_deg']:.5f}, Dec {geo['centre_dec_deg']:+.5f} deg, {_distance_text(dist)} from "
            f"{what}, and reaches only {_distance_text(reach)} from its centre ({nx} x {ny} pixels of "
            f"{scale:.3g} arcsec), so no magnitude or limit can be measured for it")
