"""Pure parts of the reference-catalogue store: derived bands, epoch propagation, coverage maps, UCD
mapping, the new presets and query regions (no database)."""
from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time

from shared.refcat import coverage as cov
from shared.refcat.astrometry import jyear_from_mjd, max_motion_deg, propagate
from shared.refcat.derived import SDSS_TO_BVRI, derive_bands, describe
from shared.refcat.model import ReferenceStars
from shared.refcat.presets import RefcatError, get_preset, preset_from_ucds, table_ucds
from shared.refcat.query import Box, Cone
from shared.refcat.records import SurveyInfo, derived_config


def test_lupton_2005_bvri_from_sdss_with_errors_as_standard_deviations():
    g, r, i = np.array([15.0, 16.2]), np.array([14.5, 15.0]), np.array([14.3, 14.6])
    eg, er, ei = np.array([0.02, 0.03]), np.array([0.01, 0.02]), np.array([0.02, 0.04])
    mags, errs = derive_bands({"g": g, "r": r, "i": i}, {"g": eg, "r": er, "i": ei},
                              {b: "sdss" for b in "BVRI"})
    np.testing.assert_allclose(mags["B"], g + 0.3130 * (g - r) + 0.2271)
    np.testing.assert_allclose(mags["V"], g - 0.5784 * (g - r) - 0.0038)
    np.testing.assert_allclose(mags["R"], r - 0.2936 * (r - i) - 0.1439)
    np.testing.assert_allclose(mags["I"], r - 1.2444 * (r - i) - 0.3820)
    # sigma_V = sqrt((0.4216 sg)^2 + (0.5784 sr)^2 + 0.0054^2): standard deviations, not variances
    np.testing.assert_allclose(errs["V"], np.sqrt((0.4216 * eg) ** 2 + (0.5784 * er) ** 2 + 0.0054 ** 2))
    np.testing.assert_allclose(errs["I"], np.sqrt((0.2444 * er) ** 2 + (1.2444 * ei) ** 2 + 0.0078 ** 2))
    assert errs["B"][0] > 0.0107 and errs["B"][0] < 0.05
    # a missing input makes the derived value missing, and a measured band is never replaced
    mags, _ = derive_bands({"g": np.array([np.nan]), "r": np.array([15.0]), "B": np.array([16.0])},
                           {"g": np.array([0.1]), "r": np.array([0.1]), "B": np.array([0.1])},
                           {"B": "sdss", "V": "sdss"})
    assert set(mags) == {"V"} and np.isnan(mags["V"][0])
    assert "Lupton (2005)" in describe("B", "sdss") and set(SDSS_TO_BVRI) == set("BVRI")


def test_derived_bands_are_offered_only_where_a_transformation_exists():
    info = SurveyInfo.from_preset(get_preset("SDSS"), derive=["B", "V"])
    assert info.derived == {"B": "sdss", "V": "sdss"}
    with pytest.raises(RefcatError, match="can derive bands B V R I, not U"):
        derived_config(get_preset("SDSS"), ["U"])
    with pytest.raises(RefcatError, match="no published transformation"):
        derived_config(get_preset("APASS"), ["B"])
    stars = ReferenceStars("S", "1", np.zeros(1), np.zeros(1), {}, {})
    assert stars.derived == frozenset() and stars.pmra is None and stars.epoch is None


def test_propagation_matches_astropy_space_motion_everywhere_including_the_poles():
    rng = np.random.default_rng(5)
    n = 2000
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    dec[:4] = [89.999, -89.99, 0.0, 60.0]
    pmra, pmdec = rng.normal(0, 300, n), rng.normal(0, 300, n)
    pmra[:4] = 10_000.0
    coords = SkyCoord(ra * u.deg, dec * u.deg, pm_ra_cosdec=pmra * u.mas / u.yr, pm_dec=pmdec * u.mas / u.yr,
                      obstime=Time(2016.0, format="jyear"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy: no distance given, it assumes a large one (what we want)
        moved = coords.apply_space_motion(new_obstime=Time(2031.0, format="jyear"))
    new_ra, new_dec = propagate(ra, dec, pmra, pmdec, 15.0)
    assert SkyCoord(new_ra * u.deg, new_dec * u.deg).separation(moved).arcsec.max() < 1e-6
    same_ra, same_dec = propagate(ra[:3], dec[:3], [np.nan] * 3, [np.nan] * 3, 15.0)
    np.testing.assert_allclose(same_dec, dec[:3], atol=1e-12)
    assert max_motion_deg(pmra, pmdec, 15.0) == pytest.approx(np.hypot(pmra, pmdec).max() * 15 / 3.6e6)
    assert jyear_from_mjd(51544.5) == 2000.0 and jyear_from_mjd(61365.1) == pytest.approx(2026.887, abs=1e-3)


def test_coverage_maps_fraction_and_text_round_trip():
    field = cov.cone(150.0, 2.0, 0.25)
    pixels = cov.pixels(field)
    moc = cov.from_pixels(pixels)
    assert cov.fraction(field, moc) == 1.0 and cov.from_text(cov.to_text(moc)) == moc
    half = cov.from_pixels(pixels[: pixels.size // 2])
    assert 0.1 < cov.fraction(field, half) < 0.9
    assert cov.fraction(cov.cone(10.0, -50.0, 0.25), moc) == 0.0
    assert cov.fraction(field, cov.empty()) == 0.0 and cov.to_text(cov.empty()) == ""
    ps1 = cov.dec_band(-30.0, 90.0)
    assert cov.fraction(cov.cone(0.0, -45.0, 0.3), ps1) == 0.0
    assert cov.fraction(cov.cone(0.0, 10.0, 0.3), ps1) == 1.0
    assert 0.5 < cov.sky_percent(ps1) / 75.0 < 1.01 + 0.01
    assert cov.sky_percent(cov.all_sky()) == 100.0


def test_mapping_by_ucd():
    table = Table({"RAJ2000": [10.0], "DEJ2000": [-5.0], "_RA": [10.0], "Vmag": [12.0], "e_Vmag": [0.02],
                   "g'mag": [12.5], "e_g'mag": [0.03], "Jmag": [10.0], "pmRA": [5.0], "pmDE": [-3.0], "e_RA": [0.1]})
    ucds = {"RAJ2000": "pos.eq.ra;meta.main", "DEJ2000": "pos.eq.dec;meta.main", "_RA": "pos.eq.ra",
            "Vmag": "phot.mag;em.opt.V", "e_Vmag": "stat.error;phot.mag;em.opt.V", "g'mag": "phot.mag;em.opt.B",
            "e_g'mag": "stat.error;phot.mag", "Jmag": "phot.mag;em.IR.J", "pmRA": "pos.pm;pos.eq.ra",
            "pmDE": "pos.pm;pos.eq.dec", "e_RA": "stat.error;pos.eq.ra"}
    for name, ucd in ucds.items():
        table[name].meta["ucd"] = ucd
    preset = preset_from_ucds(table_ucds(table), survey="Mine")
    mapping = preset.resolve(table.colnames)
    assert (mapping.ra, mapping.dec, mapping.pmra, mapping.pmdec) == ("RAJ2000", "DEJ2000", "pmRA", "pmDE")
    assert {b.band: (b.mag, b.err) for b in mapping.bands} == {"V": ("Vmag", "e_Vmag"), "g": ("g'mag", "e_g'mag"),
                                                               "J": ("Jmag", None)}
    assert mapping.systems == {"V": "Vega", "g": "AB", "J": "Vega"}
    stars = mapping.apply(table)
    assert stars.pmra[0] == 5.0 and stars.mags["g"][0] == 12.5
    with pytest.raises(RefcatError, match="no position"):
        preset_from_ucds([("Vmag", "phot.mag;em.opt.V")], survey="X")
    with pytest.raises(RefcatError, match="no magnitude"):
        preset_from_ucds([("ra", "pos.eq.ra"), ("dec", "pos.eq.dec")], survey="X")


def test_new_presets_read_their_archive_layouts():
    refcat2 = Table({"RA_ICRS": [1.0], "DE_ICRS": [2.0], "pmRA": [10.0], "pmDE": [-5.0], "gmag": [15.0],
                     "e_gmag": [0.01], "rmag": [14.5], "e_rmag": [0.01]})
    mapping = get_preset("atlas-refcat2").resolve(refcat2.colnames)
    assert (mapping.pmra, mapping.pmdec) == ("pmRA", "pmDE") and mapping.band_names == ["g", "r"]
    native = Table({"RA": [1.0], "Dec": [2.0], "pmra": [1.0], "pmdec": [1.0], "g": [15.0], "dg": [0.01]})
    assert get_preset("refcat2").resolve(native.colnames).bands[0].err == "dg"
    smss = Table({"RAICRS": [300.0], "DEICRS": [-40.0], "uPSF": [16.0], "e_uPSF": [0.03], "vPSF": [15.5],
                  "e_vPSF": [0.02], "gPSF": [14.0], "e_gPSF": [0.01]})
    sm = get_preset("SkyMapper")
    assert sm.resolve(smss.colnames).band_names == ["u", "v", "g"] and sm.systems["v"] == "AB"
    mast = Table({"raMean": [1.0], "decMean": [2.0], "gMeanPSFMag": [15.0], "gMeanPSFMagErr": [0.01]})
    assert get_preset("PS1").resolve(mast.colnames).ra == "raMean"
    skyserver = Table({"ra": [1.0], "dec": [2.0], "psfMag_g": [15.0], "psfMagErr_g": [0.01]})
    sdss = get_preset("SDSS").resolve(skyserver.colnames)
    assert sdss.bands[0].err == "psfMagErr_g" and get_preset("SDSS").derivable == ("B", "V", "R", "I")
    gaia = get_preset("GaiaDR3")
    assert gaia.epoch == 2016.0 and "pmra" in gaia.pmra
    # a proper motion beyond 20"/yr is a bad value, not a star
    table = Table({"ra": [1.0, 2.0], "dec": [1.0, 2.0], "pmra": [5.0, 1e6], "pmdec": [1.0, 1.0],
                   "phot_g_mean_mag": [12.0, 13.0], "phot_g_mean_flux_over_error": [100.0, 100.0]})
    stars = gaia.map_table(table)
    assert stars.pmra[0] == 5.0 and np.isnan(stars.pmra[1])


def test_query_regions():
    box = Box(359.5, 0.5, -1.0, 1.0)  # through RA 0
    ra = np.array([359.6, 0.4, 1.0, 180.0, 0.0])
    dec = np.array([0.0, 0.9, 0.0, 0.0, -1.1])
    assert box.contains(ra, dec).tolist() == [True, True, False, False, False]
    ra_c, dec_c, radius = box.bounding_cone()
    assert ra_c == pytest.approx(0.0, abs=1e-9) or ra_c == pytest.approx(360.0)
    assert radius == pytest.approx(np.hypot(0.5, 1.0), rel=0.01)
    cone = Cone(10.0, 20.0, 0.5)
    assert cone.contains(np.array([10.0, 10.0]), np.array([20.49, 20.51])).tolist() == [True, False]
