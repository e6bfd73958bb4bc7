"""Header standardisation: the keyword spellings of real cameras to one internal record."""
from __future__ import annotations

import pytest
from astropy.io import fits
from astropy.time import Time

from shared.fitsimage import calibration_refusal, missing_for_calibration, read_image, standardise_header
from shared.fitsimage._values import normalise_filter


def _h(cards) -> fits.Header:
    header = fits.Header()
    for card in cards:
        header.append(card)
    return header


def _mjd(iso: str, scale: str = "utc") -> float:
    return float(Time(iso, scale=scale).utc.mjd)


def test_a_complete_header_fills_every_field_and_says_where_from():
    h = _h([("DATE-OBS", "2024-03-01T22:10:00.5"), ("EXPTIME", 120.0), ("FILTER", "SDSS-r'"), ("GAIN", 1.6),
            ("RDNOISE", 9.0, "[e-] read noise"), ("SATURATE", 50000.0), ("PIXSCALE", 0.55), ("XBINNING", 1),
            ("YBINNING", 1), ("OBJCTRA", "10 00 08.43"), ("OBJCTDEC", "+19 42 06.6"), ("AIRMASS", 1.31),
            ("TELESCOP", "T1"), ("OBJECT", "Gaia24abc")])
    r = standardise_header(h)
    assert r.mjd_start == pytest.approx(_mjd("2024-03-01T22:10:00.5"), abs=1e-9)
    assert r.mjd_mid == pytest.approx(r.mjd_start + 60 / 86400)
    assert (r.exptime_s, r.filter, r.filter_raw) == (120.0, "r", "SDSS-r'")
    assert (r.gain_e_per_adu, r.read_noise_e, r.saturation_adu, r.pixel_scale_arcsec) == (1.6, 9.0, 50000.0, 0.55)
    assert r.pointing_ra_deg == pytest.approx(150.035125) and r.pointing_dec_deg == pytest.approx(19.70183, abs=1e-5)
    assert r.airmass == 1.31 and r.binning == (1, 1) and not r.has_celestial_wcs
    assert r.sources["mjd_start"] == "header DATE-OBS" and r.sources["pointing_ra_deg"] == "header OBJCTRA/OBJCTDEC"
    assert missing_for_calibration(r) == [] and calibration_refusal(r) is None


@pytest.mark.parametrize("cards, iso, scale", [
    ([("DATE-OBS", "2021-10-08"), ("TIME-OBS", "01:55:17.144")], "2021-10-08T01:55:17.144", "utc"),
    ([("DATE-OBS", "2021/10/08"), ("UT", "1:55:17")], "2021-10-08T01:55:17", "utc"),
    ([("DATE-OBS", "26/10/92"), ("TM-START", 11048.0)], "1992-10-26T03:04:08", "utc"),
    ([("DATE-OBS", "2007-10-11"), ("UTSTART", 13.201389, "[h] Start time")], "2007-10-11T13:12:05.000", "utc"),
    ([("DATE-OBS", "2000-09-27"), ("TAIHMS", "02:50:45.01"), ("TIMESYS", "TAI")], "2000-09-27T02:50:45.01", "tai"),
    ([("MJD-OBS", 59495.0800082)], None, None),
    ([("JD", 2459495.5800082)], None, None),
])
def test_observation_start_from_the_many_spellings(cards, iso, scale):
    r = standardise_header(_h(cards + [("EXPTIME", 10.0)]))
    expected = _mjd(iso, scale) if iso else 59495.0800082
    assert r.mjd_start == pytest.approx(expected, abs=2e-8)


def test_a_mid_exposure_keyword_wins_and_gives_the_start():
    r = standardise_header(_h([("JDMID", 2460000.75, "middle of exp."), ("EXPTIME", 600.0),
                               ("DATE-OBS", "2023-02-25T05:50:00")]))
    assert r.mjd_mid == pytest.approx(60000.25) and r.mjd_start == pytest.approx(60000.25 - 300 / 86400)
    assert "mid-exposure" in r.sources["mjd_start"]


def test_midas_mjd_disagreeing_with_date_obs_is_noted_and_date_obs_used(shared_data):
    r = standardise_header(read_image((shared_data / "images" / "sep_eso_ntt_emmi_R_256.fits").read_bytes()).header)
    assert r.mjd_start == pytest.approx(_mjd("1992-10-26T03:04:08"), abs=1e-8)
    assert any("MJD-OBS" in n and "+12.00 h" in n for n in r.notes)
    assert (r.filter, r.sources["filter"]) == ("R", "header ESO INS OPTI-7 NAME")
    assert r.airmass == pytest.approx(1.06835)


def test_a_date_without_time_is_missing_and_the_refusal_names_it():
    r = standardise_header(_h([("DATE-OBS", "2013-05-05")]))
    assert r.mjd_start is None and any("no time of day" in n for n in r.notes)
    missing = missing_for_calibration(r)
    assert len(missing) == 2 and "observation time" in missing[0] and "exposure time" in missing[1]
    assert calibration_refusal(r).startswith("the image cannot be calibrated without the observation time")


def test_upload_values_fill_what_the_header_lacks_but_never_override_it():
    r = standardise_header(_h([("BAND", "J")]), upload={"mjd": 60100.5, "exptime_s": 30, "filter": "K"})
    # a typed MJD is mid-exposure (as for catalogues): the start is half the exposure earlier
    assert (r.mjd_mid, r.exptime_s, r.filter) == (60100.5, 30.0, "J")
    assert r.mjd_start == pytest.approx(60100.5 - 15.0 / 86400.0)
    assert r.sources["mjd_mid"].startswith("upload (mid-exposure)") and r.sources["filter"] == "header BAND"
    r2 = standardise_header(_h([("EXPTIME", 5.0), ("DATE-OBS", "2020-01-01T00:00:00")]),
                            upload={"mjd": 1.0e4 + 1, "exptime_s": 30})
    assert r2.exptime_s == 5.0 and r2.mjd_start == pytest.approx(_mjd("2020-01-01T00:00:00"))


@pytest.mark.parametrize("raw, name", [
    ("r", "r"), ("R", "R"), ("rp", "r"), ("SDSS r'", "r"), ("Bessell-R", "R"), ("Rc", "R"), ("Ic", "I"),
    ("V", "V"), ("g'", "g"), ("zs", "z"), ("Ks", "Ks"), ("K", "K"), ("Clear", "clear"), ("L", "clear"),
    ("Luminance", "clear"), ("w", "clear"), ("2 1", None), ("Halpha", None), ("", None),
])
def test_filter_names_are_normalised(raw, name):
    assert normalise_filter(raw) == name


def test_filter_wheels_skip_air_and_the_observatory_maps_wheel_positions():
    r = standardise_header(_h([("FILTER1", "air"), ("FILTER2", "w"), ("FILTER3", "air")]))
    assert r.filter == "clear"
    r = standardise_header(_h([("FILTER1", "air"), ("FILTER2", "V")]))
    assert (r.filter, r.sources["filter"]) == ("V", "header FILTER2")
    r = standardise_header(_h([("FILTER", "2 1")]))
    assert r.filter is None and r.filter_raw == "2 1" and any("not a filter name" in n for n in r.notes)
    r = standardise_header(_h([("FILTER", "2 1")]), observatory={"filters": {"2 1": "V"}})
    assert r.filter == "V" and r.sources["filter"].startswith("observatory filter map")


def test_pointing_in_hours_or_degrees_and_b1950():
    assert standardise_header(_h([("RA", "19:09:17.959"), ("DEC", "+59:29:38.15")])).pointing_ra_deg == \
        pytest.approx(287.3248, abs=1e-4)
    assert standardise_header(_h([("RA", 313.72801), ("DEC", -6.295098)])).pointing_ra_deg == 313.72801
    r = standardise_header(_h([("TELRA", 5.5935528, "[h] Current telescope right ascension"), ("TELDEC", 21.79)]))
    assert r.pointing_ra_deg == pytest.approx(83.9033, abs=1e-4)
    r = standardise_header(_h([("RA", 10.0), ("DEC", 20.0), ("EQUINOX", 1950.0)]))
    assert r.pointing_ra_deg == pytest.approx(10.64, abs=0.02) and any("B1950" in n for n in r.notes)
    r = standardise_header(_h([("RA", "99:99"), ("DEC", "+100:00:00")]))
    assert r.pointing_ra_deg is None and any("could not be read" in n for n in r.notes)


def test_the_observatory_record_fills_gaps_and_wins_for_the_site():
    h = _h([("GAIN", 0.0), ("CCDSUM", "2 2"), ("LONGITUD", 11.33, "[deg] West"), ("LATITUDE", 44.26),
            ("RDNOISE", 3.0, "[ADU] read noise")])
    r = standardise_header(h)
    assert r.site_lon_deg == pytest.approx(-11.33) and r.gain_e_per_adu is None and r.read_noise_e is None
    obs = {"name": "Loiano 1.52", "lon_deg": 11.3344, "lat_deg": 44.2592, "gain": 2.22, "read_noise": 3.1,
           "pixel_scale_arcsec": 0.29, "saturation_adu": 52000}
    r = standardise_header(h, observatory=obs)
    assert (r.site_lon_deg, r.site_lat_deg, r.site_name) == (11.3344, 44.2592, "Loiano 1.52")
    assert any("differs from the observatory record" in n for n in r.notes)
    assert r.gain_e_per_adu == 2.22 and r.sources["gain_e_per_adu"] == "observatory record"
    assert r.read_noise_e == pytest.approx(3.0 * 2.22)  # the header's ADU read noise, in electrons
    assert r.binning == (2, 2) and r.pixel_scale_arcsec == pytest.approx(0.58)
    assert r.sources["pixel_scale_arcsec"] == "observatory record x binning 2" and r.saturation_adu == 52000


def test_a_header_latitude_without_longitude_takes_the_observatory_site():
    h = _h([("LATITUDE", 44.26), ("EXPTIME", 30.0)])
    r = standardise_header(h, observatory={"lon_deg": 11.3344, "lat_deg": 44.2592})
    assert (r.site_lon_deg, r.site_lat_deg) == (11.3344, 44.2592)
    assert r.sources["site_lon_deg"] == "observatory record"


def test_airmass_is_computed_from_pointing_time_and_site_when_absent():
    # zenith: the pointing is the site's meridian at its latitude
    t = Time("2024-06-01T00:00:00", scale="utc")
    lst = t.sidereal_time("mean", longitude=20.81).deg
    h = _h([("DATE-OBS", t.isot), ("EXPTIME", 0.0001), ("RA", float(lst)), ("DEC", -32.38)])
    r = standardise_header(h, observatory={"lon_deg": 20.81, "lat_deg": -32.38})
    assert r.airmass == pytest.approx(1.0, abs=0.002) and r.sources["airmass"].startswith("computed")


def test_real_headers(shared_data):
    images = shared_data / "images"
    sdss = standardise_header(read_image((images / "sdss_ngc6976_reprojected_g.fits").read_bytes()).header)
    assert sdss.exptime_s == pytest.approx(53.907456)  # a string in the header
    assert sdss.mjd_start == pytest.approx(_mjd("2000-09-27T02:50:45.01", "tai"), abs=1e-8)  # TAIHMS in TAI
    assert sdss.has_celestial_wcs and sdss.pixel_scale_arcsec == pytest.approx(1.188, abs=1e-3)
    ukidss = standardise_header(read_image((images / "ukidss_wfcam_K_gcs_cutout300.fits").read_bytes()).header)
    assert (ukidss.filter, ukidss.gain_e_per_adu, ukidss.read_noise_e, ukidss.pixel_scale_arcsec) == (
        "K", 4.5, 25.0, 0.4)
    assert ukidss.pointing_ra_deg == pytest.approx(83.90329) and ukidss.has_celestial_wcs  # TELRA in hours
    m13 = standardise_header(read_image((images / "M13_blue_0001.fits").read_bytes()).header)
    assert m13.pointing_ra_deg is None and m13.filter is None and not m13.has_celestial_wcs
    assert m13.exptime_s == 5.0 and missing_for_calibration(m13) == []
    mro = standardise_header(read_image((images / "mro_2.4m_didymos_512.fits").read_bytes()).header)
    assert mro.binning == (4, 4) and mro.airmass == pytest.approx(1.01149) and mro.filter is None
    tmass = standardise_header(read_image((images / "2mass_galactic_center_j.fits").read_bytes()).header)
    assert tmass.filter == "J" and len(missing_for_calibration(tmass)) == 2
