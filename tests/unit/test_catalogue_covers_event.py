"""Whether a catalogue covers the event: the nearest-star shortcut agrees with the footprint everywhere."""
from __future__ import annotations

import numpy as np

from services.ingest.checks import AUTO_RADIUS_MARGIN_ARCSEC, catalogue_outside_event, nearest_star_arcsec
from shared.catalogue import StarTable
from shared.footprint import catalogue_footprint

MARGINS_ARCSEC = (None, 1.0, 2.0, 5.0)  # None: the automatic radius's margin


def field(rng: np.random.Generator, n: int, ra_deg: float, dec_deg: float, radius_arcmin: float) -> StarTable:
    r = radius_arcmin / 60 * np.sqrt(rng.random(n))
    phi = rng.uniform(0, 2 * np.pi, n)
    dec = dec_deg + r * np.sin(phi)
    ra = (ra_deg + r * np.cos(phi) / np.cos(np.radians(dec))) % 360
    mag = rng.uniform(12, 20, n)
    return StarTable(ra, dec, mag, np.full(n, 0.02), "ASCII_HEAD", "MAG_AUTO", n)


def test_the_answer_is_the_footprint_s_for_events_inside_at_the_edge_and_outside():
    rng = np.random.default_rng(11)
    shortcuts = 0
    for case in range(60):
        ra0, dec0 = float(rng.uniform(0, 360)), float(rng.uniform(-80, 80))
        stars = field(rng, int(rng.integers(3, 400)), ra0, dec0, float(rng.uniform(1, 15)))
        footprint = catalogue_footprint(stars.ra_deg, stars.dec_deg)
        for _ in range(20):
            i = int(rng.integers(len(stars)))  # near a star, between stars, or well away
            scale_deg = float(rng.choice([0.5, 5.0, 60.0, 900.0])) / 3600
            ra = float((stars.ra_deg[i] + rng.normal(0, scale_deg) / np.cos(np.radians(stars.dec_deg[i]))) % 360)
            dec = float(np.clip(stars.dec_deg[i] + rng.normal(0, scale_deg), -90, 90))
            margin = MARGINS_ARCSEC[int(rng.integers(len(MARGINS_ARCSEC)))]
            allowed = AUTO_RADIUS_MARGIN_ARCSEC if margin is None else margin
            event = {"_id": f"ivo://Case{case}", "ra_deg": ra, "dec_deg": dec}
            expected = footprint.outside_arcsec(ra, dec) <= allowed
            assert (catalogue_outside_event(stars, event, margin) is None) == expected, (case, ra, dec, margin)
            shortcuts += nearest_star_arcsec(stars, ra, dec) <= allowed
    assert shortcuts > 100  # the shortcut was taken often enough to be tested
