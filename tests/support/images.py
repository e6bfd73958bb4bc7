"""Solving a simulated frame as the astrometry service would: standardised header, reference cone, solve."""
from __future__ import annotations

from services.astrometry.science import reference_cone, solve
from shared.fitsimage import standardise_header
from shared.simimage import select_cone


def solve_simulated(frame, truth: dict, reference):
    """The solver's result for ``frame`` against the cone of ``reference`` around the simulated event."""
    record = standardise_header(frame.header)
    ra, dec, radius = reference_cone(frame.shape, pixel_scale_arcsec=record.pixel_scale_arcsec,
                                     hint_ra_deg=truth["event_ra_deg"], hint_dec_deg=truth["event_dec_deg"])
    cone = select_cone(reference, ra, dec, radius)
    return solve(frame, references_ra_deg=cone.ra_deg, references_dec_deg=cone.dec_deg,
                 references_mag=cone.mags["r"], hint_ra_deg=ra, hint_dec_deg=dec, record=record)
