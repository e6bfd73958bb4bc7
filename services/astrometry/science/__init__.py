"""Astrometry science: solving a frame's WCS against reference positions (pure, synchronous)."""
from services.astrometry.science.solver import (
                                                AstrometryParams,
                                                AstrometryResult,
                                                SolveAttempt,
                                                field_radius_deg,
                                                header_rejection,
                                                plan_attempts,
                                                reference_cone,
                                                solve,
                                                solve_attempts,
                                                target_outside_reason,
)

__all__ = ["AstrometryParams", "AstrometryResult", "SolveAttempt", "field_radius_deg", "header_rejection",
           "plan_attempts", "reference_cone", "solve", "solve_attempts", "target_outside_reason"]
