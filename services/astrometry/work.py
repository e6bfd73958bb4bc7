"""Astrometry's steps: the solve plan (from the header record, no pixels) and the solve, run in a process pool.

The header record comes with the message (ingest standardised it once); the frame is read once per
delivery: the first solve call reads it and, when the hinted attempt failed and wider ones follow,
hands the frame back so the second call does not read the file again.
"""
from __future__ import annotations

from services.astrometry.science import (
    AstrometryParams,
    SolveAttempt,
    plan_attempts,
    solve_attempts,
    target_outside_reason,
)
from services.astrometry.science.solver import DEFAULT_PARAMS
from shared.contracts import ObservationRecord
from shared.fitsimage import ImageFrame, read_image, standardise_header
from shared.imaging import observation_header, observation_record


def plan(record: ObservationRecord, shape: tuple[int, int], hint_ra_deg: float, hint_dec_deg: float,
         params: AstrometryParams = DEFAULT_PARAMS) -> list[SolveAttempt]:
    """The attempts of the solver, each with the reference cone it needs (``shape`` is ``(ny, nx)``).

    The hint is the event position; the header pointing (pointing keywords, else the centre of the
    header WCS) is a further centre to try when it is far from it.
    """
    p_ra, p_dec = record.pointing_ra_deg, record.pointing_dec_deg
    if p_ra is None or p_dec is None:
        p_ra, p_dec = record.wcs_centre_ra_deg, record.wcs_centre_dec_deg
    return plan_attempts(shape, pixel_scale_arcsec=record.pixel_scale_arcsec, event_ra_deg=hint_ra_deg,
                         event_dec_deg=hint_dec_deg, pointing_ra_deg=p_ra, pointing_dec_deg=p_dec, params=params)


def shape_of(record: ObservationRecord) -> tuple[int, int] | None:
    """``(ny, nx)`` of the frame from the record's NAXIS, None when the header did not say."""
    return None if record.naxis is None else (int(record.naxis[1]), int(record.naxis[0]))


def inspect(data: bytes, extension, record: ObservationRecord | None, upload: dict) -> tuple[ObservationRecord,
                                                                                          tuple[int, int]]:
    """The record (standardised here, without an observatory record, when the message had none) and the shape.

    Only for a message without a usable record; the normal path plans without reading the frame.
    """
    frame = read_image(data, extension=extension)
    if record is None:
        record = observation_record(standardise_header(frame.header, upload=upload))
    return record, frame.shape


def run_solve(image: bytes | ImageFrame, extension, record: ObservationRecord, *, attempts: list[dict],
              references: list, target_ra_deg: float, target_dec_deg: float, earlier: list[dict] | None = None,
              budget_s: float | None = None, header_rejected: str | None = None, keep_frame: bool = False,
              params: AstrometryParams = DEFAULT_PARAMS) -> dict:
    """Solve with the given attempts (``references[i]`` the stars of ``attempts[i]``'s cone or None).

    ``image`` is the uploaded file, or the frame an earlier call handed back. The result dict has
    ``target_outside``: a sentence when the solved frame does not contain the target; with
    ``keep_frame``, a failure another attempt may mend also has ``frame`` (the frame read here).
    """
    frame = image if isinstance(image, ImageFrame) else read_image(image, extension=extension)
    tries = [SolveAttempt(**a) for a in attempts]
    by_attempt = dict(zip(((a.centre_ra_deg, a.centre_dec_deg, a.cone_radius_deg) for a in tries), references,
                          strict=True))
    result = solve_attempts(frame, tries, lambda a: by_attempt.get((a.centre_ra_deg, a.centre_dec_deg,
                                                                      a.cone_radius_deg)),
                            record=observation_header(record), params=params, earlier=earlier, budget_s=budget_s,
                            header_rejected=header_rejected)
    out = result.to_dict()
    out["target_outside"] = None
    if result.status == "solved":
        out["target_outside"] = target_outside_reason(result.wcs, frame.shape, target_ra_deg, target_dec_deg,
                                                      margin_arcsec=params.footprint_margin_arcsec)
    elif keep_frame and result.retryable:
        out["frame"] = frame
    return out
