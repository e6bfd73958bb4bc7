"""read_catalogue on the real third-party sample catalogues in the shared data folder."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from shared.catalogue import CatalogueError, read_catalogue


@pytest.fixture(scope="module")
def catalogues(shared_data):
    return shared_data / "catalogues"


def _read(catalogues, name: str, **kwargs):
    path = catalogues / name
    return read_catalogue(path.read_bytes(), filename=path.name, **kwargs)


def _assert_clean(table) -> None:
    for values in (table.ra_deg, table.dec_deg, table.mag, table.mag_err):
        assert values.dtype == np.float64 and values.shape == (len(table),)
        assert np.all(np.isfinite(values))
    assert np.all((table.mag_err > 0) & (table.mag_err <= 5))
    assert len(table) + sum(table.n_dropped.values()) == table.n_input


def test_lco_ldac_with_fluxes_only(catalogues):
    table = _read(catalogues, "lco_cpt1m013_kb76_w_LDAC.fits")
    _assert_clean(table)
    assert (table.file_format, table.mag_column, table.n_input) == ("FITS_LDAC", "FLUX_AUTO", 974)
    assert len(table) == 972 and table.n_dropped == {"non-positive flux": 2}
    assert (table.exptime_s, table.exptime_source) == (115.0, "header EXPTIME")
    assert table.header["FILTER"] == "w" and table.header["EXPTIME"] == 115.0
    assert isinstance(table.header["MJD-OBS"], float) and table.header["TELESCOP"] == "1m0-13"
    assert -16 < table.mag.min() and table.mag.max() < 0  # -2.5 log10(counts / 115 s)
    assert 219.6 < table.ra_deg.min() and table.ra_deg.max() < 220.0


def test_lco_photpipe_ldac_mag_auto_drops_99_sentinels(catalogues):
    table = _read(catalogues, "lco_1m0-05_fa15_w_photpipe_LDAC_MAG_AUTO.fits")
    _assert_clean(table)
    assert (table.mag_column, table.n_input, len(table)) == ("MAG_AUTO", 2500, 2314)
    assert table.n_dropped == {"sentinel": 180, "absurd": 6}
    assert -21 < table.mag.min() and table.mag.max() < -4  # instrumental, not per second
    assert 341.8 < table.ra_deg.min() and table.dec_deg.max() < -20.5  # from XWIN_WORLD/YWIN_WORLD
    assert table.header["FILTER"] == "w" and table.exptime_s is None


def test_mro_ldac_without_wcs_is_refused(catalogues):
    with pytest.raises(CatalogueError, match="sky positions .* are all zero"):
        _read(catalogues, "mro_didymos_LDAC_NO_WCS.fits")


def test_ldac_missing_end_card_is_refused(catalogues):
    with pytest.raises(CatalogueError, match=r"^the FITS file is damaged \(Header missing END card\)"):
        _read(catalogues, "lco_LDAC_CORRUPT_missing_END.fits")


def test_truncated_ldac_is_refused_but_missing_padding_is_not(catalogues):
    data = (catalogues / "lco_cpt1m013_kb76_w_LDAC.fits").read_bytes()
    with pytest.raises(CatalogueError, match="the FITS file is damaged"):
        read_catalogue(data[: len(data) - 20000])
    for end in (3000, 86400, 90000):  # in the LDAC_IMHEAD header, before and in the LDAC_OBJECTS header
        with pytest.raises(CatalogueError, match="the FITS file is damaged"):
            read_catalogue(data[:end])
    assert len(read_catalogue(data[: len(data) - 100])) == 972  # only the final padding is lost


def test_sep_ascii_head_with_pixel_positions_only_is_refused(catalogues):
    with pytest.raises(CatalogueError, match="no sky positions .*run astrometry"):
        _read(catalogues, "sep_emmi_image_ASCII_HEAD.cat")


def test_astropy_vector_column_sample_has_two_rows_only(catalogues):
    with pytest.raises(CatalogueError, match="only 2 rows"):
        _read(catalogues, "astropy_sextractor3_vector_columns.dat")
    table = _read(catalogues, "astropy_sextractor3_vector_columns.dat", min_stars=2)
    assert table.mag_column == "MAG_AUTO"
    np.testing.assert_allclose(table.mag, [22.9929, 20.9258])
    np.testing.assert_allclose(table.ra_deg, [265.1445228, 265.1384412])


def test_astropy_vector_column_sample_aperture_selection(catalogues):
    data = (catalogues / "astropy_sextractor3_vector_columns.dat").read_bytes()
    without_auto = data.replace(b" MAG_AUTO ", b" MAG_XXXX ").replace(b" MAGERR_AUTO ", b" MAGERR_XXXX ")
    table = read_catalogue(without_auto, min_stars=2, aperture_index=3)
    assert table.mag_column == "MAG_APER[3]"
    np.testing.assert_allclose(table.mag, [22.5162, 21.1244])
    np.testing.assert_allclose(table.mag_err, [0.1856, 0.0520])
    assert read_catalogue(without_auto, min_stars=2, aperture_index=6).mag[0] == pytest.approx(21.0361)


@pytest.mark.parametrize(
    ("name", "rows", "kept", "filter_", "exptime"),
    [
        ("lco_cpt1m010-kb70-20160210-0365-e90_cat.fits", 45, 44, "w", 25.0),
        ("lco_elp1m008-fl05-20160217-0218-e90_cat.fits", 319, 319, "w", 15.0),
        ("lco_cpt1m013_kb76_rp_252P_oracdr_cat.fits", 360, 360, "rp", 100.0),
    ],
)
def test_lco_oracdr_fits_tables(catalogues, name, rows, kept, filter_, exptime):
    table = _read(catalogues, name)
    _assert_clean(table)
    assert (table.file_format, table.mag_column, table.n_input, len(table)) == ("FITS", "MAG_APER", rows, kept)
    assert -15 < table.mag.min() and table.mag.max() < -5
    assert table.header["FILTER"] == filter_ and table.header["EXPTIME"] == exptime
    assert isinstance(table.header["MJD-OBS"], float) and isinstance(table.header["DATE-OBS"], str)


def test_oracdr_single_aperture_refuses_another_aperture_index(catalogues):
    with pytest.raises(CatalogueError, match="MAG_APER holds a single aperture"):
        _read(catalogues, "lco_cpt1m013_kb76_rp_252P_oracdr_cat.fits", aperture_index=1)


def test_gaia_reference_catalogue_is_refused(catalogues):
    with pytest.raises(CatalogueError, match="no instrumental magnitude .*reference catalogue"):
        _read(catalogues, "lco_cpt1m013_kb76_w_GAIA-DR2_refcat_LDAC.cat")


def test_swope_ldac_with_flux_vector(catalogues):
    table = _read(catalogues, "swope_r_didymos_LDAC.fits")
    _assert_clean(table)
    assert (table.file_format, table.mag_column, table.n_input, len(table)) == ("FITS_LDAC", "FLUX_AUTO", 388, 388)
    assert (table.exptime_s, table.header["FILTER"], table.header["TELESCOP"]) == (10.0, "r", "Swope")
    assert -13 < table.mag.min() and table.mag.max() < -3


def test_gzip_compressed_fits_reads_like_the_plain_file(catalogues):
    data = (catalogues / "swope_r_didymos_LDAC.fits").read_bytes()
    np.testing.assert_array_equal(read_catalogue(gzip.compress(data)).mag, read_catalogue(data).mag)
