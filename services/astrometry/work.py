"""Astrometry's CPU-bound steps, run in a process pool: read the frame, standardise, plan, solve."""
from __future__ import annotations

from shared.fitsimage import read_image, standardise_header
from services.astrometry.science import AstrometryParams, SolveAttempt, plan_attempts, solve_attempts, target_outside_reason


def inspect(data: bytes, extension, observatory: dict, upload: dict, hint_ra_deg: float,
            hint_dec_deg: float, params: AstrometryParams = AstrometryParams()) -> dict:
    """The header record and the attempts of the solver, each with the reference cone it needs.

    The hint is the event position; the header pointing (pointing keywords, else the centre of the
    header WCS) is a further centre to try when it is far from it.
    """
    frame = read_image(data, extension=extension)
    record = standardise_header(frame.header, observatory=observatory, upload=upload)
    p_ra, p_dec = record.pointing_ra_deg, record.pointing_dec_deg
    if p_ra is None or p_dec is None:
        p_ra, p_dec = record.wcs_centre_ra_deg, record.wcs_centre_dec_deg
    attempts = plan_attempts(frame.shape, pixel_scale_arcsec=record.pixel_scale_arcsec, event_ra_deg=hint_ra_deg,
                             event_dec_deg=hint_dec_deg, pointing_ra_deg=p_ra, pointing_dec_deg=p_dec, params=params)
    return {"record": record.to_dict(), "attempts": [a.to_dict() for a in attempts]}


def run_solve(data: bytes, extension, observatory: dict, upload: dict, *, attempts: list[dict],
              references: list, target_ra_deg: float, target_dec_deg: float, earlier: list[dict] | None = None,
              budget_s: float | None = None, header_rejected: str | None = None,
              params: AstrometryParams = AstrometryParams()) -> dict:
    """Solve with the given attempts (``references[i]`` the stars of ``attempts[i]``'s cone or None).

    The result dict has ``target_outside``: a sentence when the solved frame does not contain the target.
    """
    frame = read_image(data, extension=extension)
    record = standardise_header(frame.header, observatory=observatory, upload=upload)
    tries = [SolveAttempt(**a) for a in attempts]
    by_attempt = dict(zip(((a.centre_ra_deg, a.centre_dec_deg, a.cone_radius_deg) for a in tries), references))
    result = solve_attempts(frame, tries, lambda a: by_attempt.get((a.centre_ra_deg, a.centre_dec_deg,
                                                                      a.cone_radius_deg)),
                            record=record, params=params, earlier=earlier, budget_s=budget_s,
                            header_rejected=header_rejected)
    out = result.to_dict()
    out["target_outside"] = None
    if result.status == "solved":
        out["target_outside"] = target_outside_reason(result.wcs, frame.shape, target_ra_deg, target_dec_deg,
                                                      margin_arcsec=params.footprint_margin_arcsec)
    return out
