"""The products of a measured image (catalogues, WCS header, cutouts), read back with the readers an
observer would use: our catalogue reader, astropy's ``ascii.sextractor`` and ``Table.read(hdu=2)``,
``astropy.wcs.WCS(fits.Header.fromstring(...))`` and an image viewer."""
from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import ascii as astropy_ascii
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from PIL import Image

from services.photometry import work
from services.photometry.products import CUTOUT_PX, PNG_ZOOM
from shared.catalogue import read_catalogue
from shared.simimage import make_reference_field, simulate_image

RA0, DEC0 = 150.0, 20.0


@pytest.fixture(scope="module")
def measured():
    reference = make_reference_field(ra_deg=RA0, dec_deg=DEC0, radius_deg=0.3, n_stars=4000, seed=1)
    data, truth = simulate_image(reference=reference, size_px=512, centre_ra_deg=RA0, centre_dec_deg=DEC0,
                                 seed=31, n_faint=128, transient_mag=17.0, filter_name="r")
    result = work.run_measure(data, None, None, {}, wcs_header=dict(truth["wcs_header"]),
                              target_ra_deg=truth["event_ra_deg"], target_dec_deg=truth["event_dec_deg"])
    assert result["status"] == "measured", result.get("reason")
    return result, truth


def test_every_product_is_written_in_the_measuring_step(measured):
    result, _ = measured
    assert set(result["products"]) == {"catalogue_ascii", "catalogue_ldac", "wcs_header", "cutout_png",
                                       "cutout_fits"}
    assert result["products_s"] < 2.0


def test_ascii_head_catalogue_has_every_star_for_both_readers(measured):
    result, truth = measured
    text = result["products"]["catalogue_ascii"]
    n_detected = result["metadata"]["n_detected"]
    table = astropy_ascii.read(text.decode(), format="sextractor")
    assert len(table) == n_detected > result["n_stars"]  # every star measured, not only the calibrators
    assert table["NUMBER"][0] == 1 and table["X_IMAGE"].unit == "pixel"
    ours = read_catalogue(text, filename="catalogue.cat")
    assert ours.file_format == "ASCII_HEAD" and ours.n_input == n_detected and len(ours) > 0.8 * result["n_stars"]
    # the event: the row nearest its position, 1-based pixels as SExtractor writes them
    ex, ey = truth["event_xy_px"]
    nearest = np.argmin(np.hypot(table["X_IMAGE"] - 1 - ex, table["Y_IMAGE"] - 1 - ey))
    assert np.hypot(table["X_IMAGE"][nearest] - 1 - ex, table["Y_IMAGE"][nearest] - 1 - ey) < 0.5
    assert table["ALPHA_J2000"][nearest] == pytest.approx(truth["event_ra_deg"], abs=0.5 / 3600)


def test_fits_ldac_catalogue_reads_with_astropy_and_ours(measured):
    result, _ = measured
    data = result["products"]["catalogue_ldac"]
    table = Table.read(io.BytesIO(data), hdu=2)
    assert len(table) == result["metadata"]["n_detected"]
    assert {"ALPHA_J2000", "DELTA_J2000", "MAG_PSF", "MAGERR_PSF", "FLAGS_PHOT"} <= set(table.colnames)
    with fits.open(io.BytesIO(data)) as hdus:
        assert [h.name for h in hdus] == ["PRIMARY", "LDAC_IMHEAD", "LDAC_OBJECTS"]
    ours = read_catalogue(data, filename="catalogue.ldac.fits")
    assert ours.file_format == "FITS_LDAC" and ours.header["EXPTIME"] == 60.0 and ours.header["FILTER"] == "r"


def test_wcs_header_gives_the_solved_wcs_back(measured):
    result, truth = measured
    text = result["products"]["wcs_header"].decode("ascii")
    assert len(text) % 2880 == 0
    wcs = WCS(fits.Header.fromstring(text))
    truth_wcs = WCS(truth["wcs_header"])
    xy = np.array([[10.0, 20.0], [256.0, 256.0], [500.0, 480.0]])
    assert np.allclose(wcs.all_pix2world(xy, 0), truth_wcs.all_pix2world(xy, 0), atol=1e-9)


def test_cutouts_are_centred_on_the_event(measured):
    result, truth = measured
    with fits.open(io.BytesIO(result["products"]["cutout_fits"])) as hdus:
        cut = hdus[0]
        assert cut.data.shape == (CUTOUT_PX, CUTOUT_PX)
        x, y = WCS(cut.header).all_world2pix([[truth["event_ra_deg"], truth["event_dec_deg"]]], 0)[0]
        assert abs(x - CUTOUT_PX / 2) <= 1 and abs(y - CUTOUT_PX / 2) <= 1
        centre = cut.data[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2]
        sky, noise = np.nanmedian(cut.data), truth["sky_sigma_adu"]
        assert centre.min() > sky + 20 * noise  # the 17 mag transient sits on the cutout's centre
    image = Image.open(io.BytesIO(result["products"]["cutout_png"]))
    assert image.format == "PNG" and image.size == (CUTOUT_PX * PNG_ZOOM, CUTOUT_PX * PNG_ZOOM)
    pixels = np.asarray(image.convert("RGB"), dtype=int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 120)
    assert red.any()  # the marker
    rows, cols = np.nonzero(red)
    centre = CUTOUT_PX * PNG_ZOOM / 2
    assert abs(rows.mean() - centre) < PNG_ZOOM * 2 and abs(cols.mean() - centre) < PNG_ZOOM * 2


def test_an_event_off_the_frame_gives_no_cutout(measured):
    result, truth = measured
    reference = make_reference_field(ra_deg=RA0, dec_deg=DEC0, radius_deg=0.3, n_stars=4000, seed=1)
    data, truth = simulate_image(reference=reference, size_px=256, centre_ra_deg=RA0, centre_dec_deg=DEC0,
                                 seed=32, n_faint=64, filter_name="r")
    off = work.run_measure(data, None, None, {}, wcs_header=dict(truth["wcs_header"]),
                           target_ra_deg=RA0 + 0.2, target_dec_deg=DEC0)
    assert off["status"] == "measured"
    assert set(off["products"]) == {"catalogue_ascii", "catalogue_ldac", "wcs_header"}
