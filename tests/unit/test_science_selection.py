"""Band choice: the same upload gives the same answer whatever was requested; no incompatible bands."""
from __future__ import annotations

import pytest

from services.calibration.science.bands import band_hint, band_hint_for_filters, exact_band, natural_colour
from services.calibration.science.calibrate import calibrate
from services.calibration.science.simulate import FieldSpec, simulate

NUMBERS = ("survey", "band", "filter", "zeropoint", "zeropoint_err", "scatter", "outlier_fraction", "npoints",
           "mag", "mag_err", "zp_err", "calib_err", "colour_err", "total_err", "is_limit", "limit_err",
           "colour_slope", "target_colour", "match_radius_arcsec", "ra_deg", "dec_deg", "fits", "matched",
           "band_matches", "survey_match_radius_arcsec", "refcat_versions", "params_hash")


def run(sim, **kw):
    kw.setdefault("declared_filter", sim.declared_filter_argument)
    return calibrate(sim.stars, sim.references, target_ra_deg=sim.target_ra_deg,
                     target_dec_deg=sim.target_dec_deg, **kw)


def same(a, b) -> None:
    for name in NUMBERS:
        assert getattr(a, name) == getattr(b, name), name


@pytest.mark.parametrize("spec", [
    FieldSpec(seed=31, band="r", declared_filter="rp", colour_term=0.1, n_catalogue=600, target_snr=60.0),
    FieldSpec(seed=32, band="V", declared_filter=None, colour_term=-0.08, n_catalogue=400, target_snr=None),
    FieldSpec(seed=33, band="i", declared_filter="I", declared_in_header=False, n_catalogue=300,
              target_snr=20.0, target_known=True, outlier_fraction=0.3),
], ids=["declared r, colour term", "undeclared V, limit", "upload field I, known target"])
def test_identical_result_automatic_survey_any_and_forced(spec):
    sim = simulate(spec)
    auto = run(sim)
    assert auto.status in ("calibrated", "limit"), auto.reason
    assert auto.band == spec.band
    for request in (f"{auto.survey}/any", auto.filter, f"any/{auto.band}", f"{auto.survey.lower()}/{auto.band}"):
        forced = run(sim, force_filter=request)
        assert forced.mode == "FORCED" and forced.status == auto.status
        same(auto, forced)
    # and the result does not depend on the order of the references
    same(auto, calibrate(sim.stars, sim.references[::-1], target_ra_deg=sim.target_ra_deg,
                         target_dec_deg=sim.target_dec_deg, declared_filter=sim.declared_filter_argument))


def test_undeclared_filter_is_inferred_and_stated():
    sim = simulate(FieldSpec(seed=34, band="g", declared_filter=None, n_catalogue=500))
    res = run(sim)
    assert res.band == "g" and res.declared_filter is None
    assert res.inferred_filter == "APASS/g" and res.declared_filter_source == "inferred from the data"
    assert res.compatible_bands == list(band_hint("g").bands)


def test_undeclared_and_too_few_stars_fails_with_a_reason():
    sim = simulate(FieldSpec(seed=35, band="r", declared_filter=None, n_catalogue=7))
    res = run(sim)
    assert res.status == "failed" and "declare the filter" in res.reason
    assert res.mag is None and res.fits  # the fits are still there for the plot
    forced = run(sim, force_filter="GaiaDR3/G")  # forcing a band still works
    assert forced.band == "G" and forced.status in ("calibrated", "limit")


def test_declared_filter_never_crosses_to_an_incompatible_band():
    sim = simulate(FieldSpec(seed=36, band="B", declared_filter="r", n_catalogue=500))  # a B frame said to be r
    res = run(sim)
    assert res.status == "failed" or res.band in band_hint("r").bands
    assert "B" not in band_hint("r").bands


def test_bp_and_rp_only_when_declared_or_forced():
    sim = simulate(FieldSpec(seed=37, band="V", declared_filter=None, n_catalogue=400, apass_depth_mag=12.0))
    res = run(sim)  # no APASS stars: only Gaia bands; a V frame looks like BP but is not calibrated in it
    assert res.band not in ("BP", "RP")
    assert run(sim, force_filter="GaiaDR3/BP").band == "BP"
    assert run(sim, declared_filter="BP").band == "BP"


def test_another_band_than_the_filter_needs_a_colour_term():
    # an r frame whose APASS r fit fails (few stars): Gaia G is compatible, but only with a colour term
    sim = simulate(FieldSpec(seed=38, band="r", n_catalogue=400, apass_depth_mag=12.5))
    res = run(sim)
    assert res.band == "G" and res.fits[[f.filter for f in res.fits].index("GaiaDR3/G")].colour == "BP-RP"
    assert res.fits[[f.filter for f in res.fits].index("GaiaDR3/G")].colour_note is not None
    no_colours = [type(r)(r.survey, r.version, r.ra_deg, r.dec_deg, {"G": r.mags["G"]}, {"G": r.mag_errs["G"]})
                  if r.survey == "GaiaDR3" else r for r in sim.references]
    bare = calibrate(sim.stars, no_colours, target_ra_deg=sim.target_ra_deg, target_dec_deg=sim.target_dec_deg)
    assert bare.status == "failed" and "colour term" in bare.reason


def test_observatory_filter_list_restricts_the_choice():
    sim = simulate(FieldSpec(seed=39, band="i", declared_filter=None, n_catalogue=400))
    res = run(sim, observatory_filters=["r", "i"])
    assert res.declared_filter_source == "observatory filters" and res.band in ("i", "r")
    assert "B" not in res.compatible_bands and "U" not in res.compatible_bands
    hint = band_hint_for_filters("r, i; Halpha")
    assert hint.tiers[0] == ("r", "R", "i", "I") and hint.tiers[1] == ("G",)
    assert band_hint_for_filters(["Halpha"]) is None and band_hint_for_filters(None) is None
    assert exact_band(hint) is None and exact_band(band_hint("clear")) is None
    assert exact_band(band_hint("SDSS-r'")) == "r"


def test_natural_colours():
    assert natural_colour("r", ["B", "V", "g", "r", "i"]) == ("g", "r")
    assert natural_colour("V", ["B", "V", "g", "r", "i"]) == ("B", "V")
    assert natural_colour("G", ["G", "BP", "RP"]) == ("BP", "RP")
    assert natural_colour("G", ["G"]) is None
    assert natural_colour("i", ["r", "i"]) == ("r", "i")
    assert natural_colour("K", ["J", "H", "K"]) == ("J", "K")
