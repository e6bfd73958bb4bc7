"""The seeded synthetic-field simulator used by the demo and the benchmarks."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import ascii
from astropy.table import Table

from shared.refcat.presets import get_preset
from shared.simfield import (
    APASS_COLUMNS,
    COLOUR_SCATTER_MAG,
    SYNTHETIC_VERSION,
    band_offsets,
    draw_gr_mag,
    number_count_mags,
    simulate_field,
    write_catalogue,
    write_reference_csv,
)

APASS_LAYOUT = ["RAJ2000", "DEJ2000", "Bmag", "e_Bmag", "Vmag", "e_Vmag", "g'mag", "e_g'mag", "r'mag", "e_r'mag",
                "i'mag", "e_i'mag"]


def _sep_arcsec(ra0, dec0, ra, dec) -> np.ndarray:
    return SkyCoord(ra0, dec0, unit="deg").separation(SkyCoord(np.asarray(ra), np.asarray(dec), unit="deg")).arcsec


def test_seeded_determinism():
    a = simulate_field(ra_deg=150.0, dec_deg=2.0, seed=7)
    b = simulate_field(ra_deg=150.0, dec_deg=2.0, seed=7)
    c = simulate_field(ra_deg=150.0, dec_deg=2.0, seed=8)
    assert a.catalogue_text == b.catalogue_text
    assert a.truth == b.truth
    assert all(np.array_equal(a.reference[n].filled(np.nan) if hasattr(a.reference[n], "filled") else a.reference[n],
                              b.reference[n].filled(np.nan) if hasattr(b.reference[n], "filled") else b.reference[n],
                              equal_nan=True)
               for n in APASS_LAYOUT)
    assert a.catalogue_text != c.catalogue_text


def test_reference_layout_and_realism():
    field = simulate_field(ra_deg=150.0, dec_deg=2.0, n_stars=1000, seed=1)
    ref = field.reference
    assert ref.colnames == APASS_LAYOUT
    assert len(ref) == 1000 and ref.meta["SYNTH"] is True
    assert np.all(_sep_arcsec(150.0, 2.0, ref["RAJ2000"], ref["DEJ2000"]) <= 600.0 + 0.1)
    r = np.asarray(ref["r'mag"])
    assert 10.5 < r.min() and r.max() < 20.0  # 11-19 true, plus catalogue noise
    assert (r > 17).sum() > 3 * (r < 15).sum()  # more faint stars than bright ones
    v = np.asarray(ref["Vmag"])
    assert np.corrcoef(v, r)[0, 1] > 0.95  # bands correlated through the colour model
    g_r = np.asarray(ref["g'mag"]) - r
    assert 0.2 < np.median(g_r) < 0.9
    err = np.asarray(ref["e_r'mag"])
    assert np.median(err[r > 18]) > 3 * np.median(err[r < 14])  # errors grow with magnitude
    assert 0 < np.ma.count_masked(ref["Bmag"]) < 100  # a few missing values, like the real catalogue


def test_target_present():
    field = simulate_field(ra_deg=210.0, dec_deg=-30.0, target_mag=16.0, zeropoint_mag=24.0, seed=3)
    cat = ascii.read(field.catalogue_text, format="sextractor")
    assert {"NUMBER", "MAG_AUTO", "MAGERR_AUTO", "ALPHA_J2000", "DELTA_J2000"} <= set(cat.colnames)
    sep = _sep_arcsec(210.0, -30.0, cat["ALPHA_J2000"], cat["DELTA_J2000"])
    near = np.flatnonzero(sep < 5.0)
    assert len(near) == 1 and sep[near[0]] < 2.0
    row = cat[near[0]]
    assert row["NUMBER"] == field.truth["target_number"]
    assert row["MAG_AUTO"] == pytest.approx(16.0 - 24.0, abs=0.1)
    assert field.truth["target_mag"] == 16.0 and field.truth["zeropoint_mag"] == 24.0
    assert field.truth["synthetic"] is True


def test_target_absent_leaves_the_position_empty():
    field = simulate_field(ra_deg=210.0, dec_deg=-30.0, target_mag=None, n_stars=1000, seed=4)
    cat = field.catalogue
    assert _sep_arcsec(210.0, -30.0, cat["ALPHA_J2000"], cat["DELTA_J2000"]).min() > 5.0
    assert _sep_arcsec(210.0, -30.0, field.reference["RAJ2000"], field.reference["DEJ2000"]).min() > 5.0
    assert field.truth["target_mag"] is None and field.truth["target_number"] is None


def test_catalogue_is_the_reference_seen_through_the_zeropoint():
    field = simulate_field(ra_deg=45.0, dec_deg=20.0, n_stars=500, seed=5, band="V", zeropoint_mag=23.5,
                           outlier_fraction=0.1)
    cat = field.catalogue
    truth = field.truth
    assert len(cat) == truth["n_catalogue"] == 500 + truth["n_faint_not_in_reference"] + 1
    assert list(cat["NUMBER"]) == list(range(1, len(cat) + 1))
    ref = field.reference
    c_ref = SkyCoord(np.asarray(ref["RAJ2000"]), np.asarray(ref["DEJ2000"]), unit="deg")
    c_cat = SkyCoord(np.asarray(cat["ALPHA_J2000"]), np.asarray(cat["DELTA_J2000"]), unit="deg")
    idx, sep, _ = c_cat.match_to_catalog_sky(c_ref)
    matched = sep.arcsec < 1.5
    assert matched.sum() >= 495
    assert 0.1 < np.median(sep.arcsec[matched]) < 0.6  # ~0.3" jitter per axis
    zp = np.asarray(ref["Vmag"])[idx[matched]] - np.asarray(cat["MAG_AUTO"])[matched]
    assert np.median(zp) == pytest.approx(23.5, abs=0.03)
    outliers = np.isin(np.asarray(cat["NUMBER"]), truth["outlier_numbers"])
    assert outliers.sum() == 50
    assert np.all(np.abs(zp - 23.5)[outliers[matched]] > 0.2)
    faint = ~matched
    assert np.asarray(cat["MAG_AUTO"])[faint].max() + 23.5 > 19.0  # fainter stars not in the reference


@pytest.mark.parametrize(("ra", "dec"), [(0.02, 15.0), (359.99, -15.0), (123.0, 89.95), (300.0, -89.9)])
def test_fields_across_ra_zero_and_at_the_poles(ra, dec):
    field = simulate_field(ra_deg=ra, dec_deg=dec, n_stars=300, seed=2)
    ref = field.reference
    sep = _sep_arcsec(ra, dec, ref["RAJ2000"], ref["DEJ2000"])
    assert sep.max() <= 600.0 + 0.1
    assert np.all((np.asarray(ref["RAJ2000"]) >= 0) & (np.asarray(ref["RAJ2000"]) < 360))
    cat = field.catalogue
    assert _sep_arcsec(ra, dec, cat["ALPHA_J2000"], cat["DELTA_J2000"]).max() < 605.0


def test_benchmark_size_and_band_choice():
    field = simulate_field(ra_deg=10.0, dec_deg=10.0, n_stars=1000, band="g'", seed=9)
    assert len(field.reference) == 1000 and field.truth["band"] == "g"
    with pytest.raises(ValueError, match="band must be one of"):
        simulate_field(ra_deg=10.0, dec_deg=10.0, band="K")
    assert set(APASS_COLUMNS) == {"B", "V", "g", "r", "i"}


def test_written_files_read_back(tmp_path):
    field = simulate_field(ra_deg=150.0, dec_deg=2.0, n_stars=200, seed=11)
    field.reference.write(tmp_path / "ref.fits")  # no warning about non-standard keywords
    ref_path = write_reference_csv(field, tmp_path / "ref.csv")
    cat_path = write_catalogue(field, tmp_path / "obs.cat")
    back = Table.read(ref_path, format="ascii.csv")
    assert back.colnames == APASS_LAYOUT and len(back) == 200
    stars = get_preset("APASS").map_table(back)
    assert len(stars) == 200 and sorted(stars.mags) == ["B", "V", "g", "i", "r"]
    assert np.isnan(stars.mags["B"]).sum() == np.ma.count_masked(field.reference["Bmag"])
    assert len(ascii.read(cat_path, format="sextractor")) == field.truth["n_catalogue"]
    assert SYNTHETIC_VERSION == "synthetic-demo-1"


def test_one_star_population_for_the_demo_field_and_the_injection_simulator():
    from services.calibration.science import simulate as injection

    rng = np.random.default_rng(5)
    mags = number_count_mags(rng, 20000, 12.0, 20.0)
    assert 12.0 <= mags.min() and mags.max() <= 20.0
    per_mag = np.histogram(mags, bins=np.arange(12.0, 21.0))[0]
    slope = np.polyfit(np.arange(12.5, 20.0), np.log10(per_mag), 1)[0]
    assert slope == pytest.approx(0.3, abs=0.02)  # dN/dm ~ 10^(0.3 m)
    gr = draw_gr_mag(rng, 20000)
    assert gr.min() >= -0.3 and gr.max() <= 1.6 and abs(float(np.median(gr)) - 0.55) < 0.01
    off = band_offsets(0.55)
    assert float(off["V"]) == pytest.approx(0.41 * 0.55 - 0.01) and float(off["B"]) == pytest.approx(1.39 * 0.55 + 0.21)
    # the injection-recovery simulator draws its stars from this same model
    assert injection.band_offsets is band_offsets and injection.COLOUR_SCATTER_MAG == COLOUR_SCATTER_MAG
    field = simulate_field(ra_deg=150.0, dec_deg=2.0, n_stars=3000, seed=12)
    ref = field.reference
    r, g, v = (np.asarray(ref[c], dtype=float) for c in ("r'mag", "g'mag", "Vmag"))
    bright = r < 15.0  # small catalogue errors: the scatter about the line is the population's
    resid = (v - r) - band_offsets(g - r)["V"]
    assert abs(float(np.median(resid[bright]))) < 0.01
