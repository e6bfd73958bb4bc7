"""Astrometry science: solving a frame's WCS against reference positions (pure, synchronous)."""
from services.astrometry.science.solver import AstrometryParams, AstrometryResult, field_radius_deg, reference_cone, solve

__all__ = ["AstrometryParams", "AstrometryResult", "field_radius_deg", "reference_cone", "solve"]
