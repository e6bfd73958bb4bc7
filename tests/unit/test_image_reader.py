"""Reading uploaded FITS images: compression, extensions, and clear refusals."""
from __future__ import annotations

import bz2
import gzip
import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from shared.fitsimage import ImageRefused, read_image


def _fits(*hdus) -> bytes:
    buf = io.BytesIO()
    fits.HDUList(list(hdus)).writeto(buf)
    return buf.getvalue()


def _star_field(shape=(64, 80), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (100 + rng.normal(0, 5, shape)).astype(np.float32)


def test_plain_fits_gives_float32_pixels_and_the_header():
    data = _star_field()
    frame = read_image(_fits(fits.PrimaryHDU(data, header=fits.Header({"FILTER": "r", "EXPTIME": 30.0}))))
    assert frame.shape == (64, 80) and frame.data.dtype == np.float32
    assert np.allclose(frame.data, data)
    assert frame.header["FILTER"] == "r" and frame.extname == "PRIMARY" and frame.compression == "none"


@pytest.mark.parametrize("pack, kind", [(gzip.compress, "gzip"), (bz2.compress, "bzip2")])
def test_compressed_files_are_unpacked(pack, kind):
    data = _star_field()
    frame = read_image(pack(_fits(fits.PrimaryHDU(data))))
    assert frame.compression == kind and np.allclose(frame.data, data)


def test_tile_compressed_fz_is_read_from_its_extension():
    data = np.arange(64 * 80, dtype=np.int32).reshape(64, 80) % 1000  # integers: lossless Rice compression
    frame = read_image(_fits(fits.PrimaryHDU(header=fits.Header({"FILTER": "V"})),
                             fits.CompImageHDU(data, compression_type="RICE_1")))
    assert frame.compression == "tile" and np.array_equal(frame.data, data.astype(np.float32))
    assert frame.header["FILTER"] == "V"  # inherited from the primary header


def test_the_science_extension_is_chosen_and_primary_keywords_are_inherited():
    sci = fits.ImageHDU(_star_field(), name="SCI")
    err = fits.ImageHDU(np.sqrt(_star_field(seed=1)), name="ERR")
    data = _fits(fits.PrimaryHDU(header=fits.Header({"DATE-OBS": "2024-01-02T03:04:05", "FILTER": "i"})), err, sci)
    frame = read_image(data)
    assert frame.extname == "SCI" and frame.hdu_index == 2
    assert frame.header["DATE-OBS"] == "2024-01-02T03:04:05"
    assert any("extension 2" in n for n in frame.notes)
    assert read_image(data, extension="err").extname == "ERR"
    assert read_image(data, extension=1).extname == "ERR"


def test_asking_for_a_missing_or_non_image_extension_is_refused():
    data = _fits(fits.PrimaryHDU(_star_field()), fits.BinTableHDU(Table({"a": [1, 2]}), name="CAT"))
    with pytest.raises(ImageRefused, match="no extension 7"):
        read_image(data, extension=7)
    with pytest.raises(ImageRefused, match="no extension named 'WHT'"):
        read_image(data, extension="WHT")
    with pytest.raises(ImageRefused, match="holds no image"):
        read_image(data, extension="CAT")


def test_the_raw_multi_amplifier_lco_frame_is_refused(shared_data):
    raw = (shared_data / "images" / "lco_elp1m008_fa05_raw_mef_2021SO2.fits").read_bytes()
    with pytest.raises(ImageRefused, match="raw multi-amplifier frame .4 amplifier extensions.*reduced frames"):
        read_image(raw)


@pytest.mark.parametrize("payload, words", [
    (b"ID NUMBER MAG_AUTO\n1 2 3\n", "not a FITS image"),
    (b"", "not a FITS image"),
    (gzip.compress(b"SIMPLE  = T")[:-6], "compressed file is damaged"),
])
def test_bytes_that_are_not_an_image_are_refused(payload, words):
    with pytest.raises(ImageRefused, match=words):
        read_image(payload)


def test_a_truncated_file_is_refused_as_damaged():
    data = _fits(fits.PrimaryHDU(_star_field((200, 200))))
    with pytest.raises(ImageRefused, match="damaged"):
        read_image(data[: len(data) // 2])


def test_a_table_only_file_is_refused_with_the_catalogue_hint():
    data = _fits(fits.PrimaryHDU(), fits.BinTableHDU(Table({"ALPHA_J2000": [1.0], "DELTA_J2000": [2.0]})))
    with pytest.raises(ImageRefused, match="holds no image.*source catalogue"):
        read_image(data)


def test_cubes_calibration_frames_empty_and_tiny_images_are_refused():
    with pytest.raises(ImageRefused, match="data cube"):
        read_image(_fits(fits.PrimaryHDU(np.zeros((3, 64, 64), np.float32) + np.arange(3)[:, None, None])))
    with pytest.raises(ImageRefused, match="flat field"):
        read_image(_fits(fits.PrimaryHDU(_star_field(), header=fits.Header({"IMAGETYP": "Flat Field"}))))
    with pytest.raises(ImageRefused, match="bias frame"):
        read_image(_fits(fits.PrimaryHDU(_star_field(), header=fits.Header({"OBSTYPE": "BIAS"}))))
    with pytest.raises(ImageRefused, match="empty: every pixel has the value 7"):
        read_image(_fits(fits.PrimaryHDU(np.full((64, 64), 7.0, np.float32))))
    with pytest.raises(ImageRefused, match="only 16 x 16 pixels"):
        read_image(_fits(fits.PrimaryHDU(_star_field((16, 16)))))


def test_a_degenerate_third_axis_is_squeezed_and_nan_pixels_are_noted():
    data = _star_field()
    data[3, 4] = np.nan
    frame = read_image(_fits(fits.PrimaryHDU(data[None, :, :])))
    assert frame.shape == (64, 80) and np.isnan(frame.data[3, 4])
    assert any("1 pixels without a value" in n for n in frame.notes)


def test_non_standard_cards_become_a_note_not_a_warning(shared_data):
    frame = read_image((shared_data / "images" / "sep_eso_ntt_emmi_R_256.fits").read_bytes())
    assert frame.shape == (256, 256)
    assert any(n.startswith("FITS reader:") for n in frame.notes)
