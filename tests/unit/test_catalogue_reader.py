"""read_catalogue on synthetic catalogues built here: formats, column choice, cleaning, refusals."""
from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
from astropy.io import fits

from shared.catalogue import CatalogueError, StarTable, read_catalogue

MANUAL_HEADER = """\
#   1 MAG_AUTO        Kron-like elliptical aperture magnitude         [mag]
#   2 MAGERR_AUTO     RMS error for AUTO magnitude                    [mag]
#   3 ALPHA_J2000     Right ascension of barycenter (J2000)           [deg]
#   4 DELTA_J2000     Declination of barycenter (J2000)               [deg]
"""


def _stars(n: int = 20, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "ra": rng.uniform(150.0, 150.2, n),
        "dec": rng.uniform(-20.1, -20.0, n),
        "mag": rng.uniform(-14.0, -6.0, n),
        "err": rng.uniform(0.005, 0.2, n),
    }


def _manual_catalogue(stars: dict[str, np.ndarray], sep: str = "  ") -> bytes:
    rows = [sep.join(f"{v:.6f}" for v in row)
            for row in zip(stars["mag"], stars["err"], stars["ra"], stars["dec"], strict=True)]
    return (MANUAL_HEADER + "\n".join(rows) + "\n").encode()


def _fits_bytes(*hdus: fits.hdu.base.ExtensionHDU, primary: fits.Header | None = None) -> bytes:
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(header=primary), *hdus]).writeto(buffer)
    return buffer.getvalue()


def _table(columns: dict[str, np.ndarray], name: str | None = None) -> fits.BinTableHDU:
    cols = [
        fits.Column(name=key, format=f"{values.shape[1]}D" if values.ndim == 2 else "D", array=values)
        for key, values in columns.items()
    ]
    return fits.BinTableHDU.from_columns(cols, name=name)


def _imhead(header: fits.Header) -> fits.BinTableHDU:
    text = header.tostring()
    column = fits.Column(name="Field Header Card", format=f"{len(text)}A", array=np.array([text]))
    return fits.BinTableHDU.from_columns([column], name="LDAC_IMHEAD")


def test_manual_four_column_header_with_spaces():
    stars = _stars()
    table = read_catalogue(_manual_catalogue(stars), filename="field.cat")
    assert isinstance(table, StarTable)
    assert (table.file_format, table.mag_column, table.n_input, len(table)) == ("ASCII_HEAD", "MAG_AUTO", 20, 20)
    assert table.n_dropped == {}
    np.testing.assert_allclose(table.mag, stars["mag"], atol=1e-6)
    np.testing.assert_allclose(table.dec_deg, stars["dec"], atol=1e-6)
    assert all(a.dtype == np.float64 for a in (table.ra_deg, table.dec_deg, table.mag, table.mag_err))
    assert table.exptime_s is None


def test_manual_four_column_header_with_tabs():
    stars = _stars(seed=2)
    data = _manual_catalogue(stars, sep="\t").replace(b"#   ", b"#\t").replace(b"MAG_AUTO        ", b"MAG_AUTO\t")
    table = read_catalogue(data)
    assert len(table) == 20
    np.testing.assert_allclose(table.ra_deg, stars["ra"], atol=1e-6)
    np.testing.assert_allclose(table.mag_err, stars["err"], atol=1e-6)


def test_vector_column_from_numbering_gap_and_aperture_index():
    header = (
        "#   1 NUMBER      Running object number\n"
        "#   2 ALPHA_J2000 Right ascension [deg]\n"
        "#   3 DELTA_J2000 Declination [deg]\n"
        "#   4 MAG_APER    Fixed aperture magnitude vector [mag]\n"
        "#   8 MAGERR_APER RMS error vector [mag]\n"
        "#  12 FLAGS       Extraction flags\n"
    )
    rows = [
        f"{i} {10 + i / 100:.4f} {20 + i / 100:.4f} {-10 - i:.2f} {-11 - i:.2f} {-12 - i:.2f} {-13 - i:.2f}"
        f" 0.0{i} 0.1{i} 0.2{i} 0.3{i} 0"
        for i in range(1, 7)
    ]
    data = (header + "\n".join(rows)).encode()
    table = read_catalogue(data, aperture_index=2)
    assert table.mag_column == "MAG_APER[2]"
    np.testing.assert_allclose(table.mag, [-12.0 - i for i in range(1, 7)])
    np.testing.assert_allclose(table.mag_err, [0.2 + i / 100 for i in range(1, 7)])
    assert read_catalogue(data).mag_column == "MAG_APER[0]"
    with pytest.raises(CatalogueError, match="aperture_index 4 is out of range: MAG_APER holds 4 apertures"):
        read_catalogue(data, aperture_index=4)


def test_vector_column_last_in_header_takes_the_rest_of_the_row():
    header = "#   1 ALPHA_J2000\n#   2 DELTA_J2000\n#   3 MAGERR_APER\n#   6 MAG_APER\n"
    rows = [f"{10 + i:.1f} {20:.1f} 0.01 0.02 0.03 -9.{i} -8.{i} -7.{i}" for i in range(6)]
    table = read_catalogue((header + "\n".join(rows)).encode(), aperture_index=1)
    np.testing.assert_allclose(table.mag, [-8.0 - i / 10 for i in range(6)])
    np.testing.assert_allclose(table.mag_err, 0.02)


def test_sentinel_absurd_and_bad_rows_are_counted():
    stars = _stars(n=12, seed=3)
    bad_rows = [
        "99.0 99.0 150.1 -20.05",  # SExtractor's failed measurement
        "-99.0 0.1 150.1 -20.05",
        "-8.5 99.0 150.1 -20.05",
        "78.0 60000.0 150.1 -20.05",  # the original server's absurd example
        "-8.5 0.0 150.1 -20.05",  # zero error
        "-8.5 7.5 150.1 -20.05",  # error > 5 mag
        "nan 0.1 150.1 -20.05",
        "-8.5 0.1 0.0 0.0",
        "-8.5 0.1 150.1 95.0",
        "-8.5 0.1",  # truncated line
    ]
    data = _manual_catalogue(stars) + ("\n".join(bad_rows) + "\n").encode()
    table = read_catalogue(data)
    assert len(table) == 12 and table.n_input == 22
    assert table.n_dropped == {
        "sentinel": 3, "absurd": 3, "non-finite": 1, "zero position": 1, "position out of range": 1,
        "malformed line": 1,
    }
    assert np.all(np.isfinite(table.mag)) and table.mag.max() < 40


def test_flux_only_fits_table_uses_exptime_argument_then_header_then_one_second():
    rng = np.random.default_rng(4)
    flux = rng.uniform(1e3, 1e6, 30)
    flux[0] = -50.0  # a negative flux cannot become a magnitude
    columns = {
        "ALPHA_J2000": rng.uniform(10, 11, 30), "DELTA_J2000": rng.uniform(5, 6, 30),
        "FLUX_AUTO": flux, "FLUXERR_AUTO": 0.01 * np.abs(flux),
    }
    primary = fits.Header({"EXPTIME": 60.0, "FILTER": "rp", "MJD-OBS": 60000.5, "OBJECT": "AT2024abc"})
    data = _fits_bytes(_table(columns), primary=primary)

    table = read_catalogue(data, exptime_s=30.0)
    assert (table.file_format, table.mag_column, table.exptime_s, table.exptime_source) == (
        "FITS", "FLUX_AUTO", 30.0, "argument"
    )
    assert table.n_dropped == {"non-positive flux": 1} and len(table) == 29
    np.testing.assert_allclose(table.mag, -2.5 * np.log10(flux[1:] / 30.0))
    np.testing.assert_allclose(table.mag_err, 1.0857 * 0.01, rtol=1e-4)
    assert table.header == {"EXPTIME": 60.0, "FILTER": "rp", "MJD-OBS": 60000.5, "OBJECT": "AT2024abc"}

    from_header = read_catalogue(data)
    assert (from_header.exptime_s, from_header.exptime_source) == (60.0, "header EXPTIME")
    no_header = read_catalogue(_fits_bytes(_table(columns)))
    assert (no_header.exptime_s, no_header.exptime_source) == (1.0, "assumed 1 s")
    np.testing.assert_allclose(no_header.mag, -2.5 * np.log10(flux[1:]))
    with pytest.raises(CatalogueError, match="positive number of seconds"):
        read_catalogue(data, exptime_s=0.0)


def test_magnitude_priority_and_missing_error_column():
    stars = _stars(seed=5)
    base = {"RA": stars["ra"], "DEC": stars["dec"]}
    both = {**base, "MAG_AUTO": stars["mag"], "MAGERR_AUTO": stars["err"],
            "MAG_BEST": stars["mag"] + 1, "MAGERR_BEST": stars["err"], "FLUX_AUTO": np.full(20, 1e4),
            "FLUXERR_AUTO": np.full(20, 10.0)}
    table = read_catalogue(_fits_bytes(_table(both)))
    assert table.mag_column == "MAG_BEST"
    np.testing.assert_allclose(table.mag, stars["mag"] + 1)
    with pytest.raises(CatalogueError, match="has MAG_AUTO but not its error column MAGERR_AUTO"):
        read_catalogue(_fits_bytes(_table({**base, "MAG_AUTO": stars["mag"]})))


def test_ldac_objects_of_all_chips_are_concatenated_and_image_header_read():
    chips = [_stars(n=8, seed=6), _stars(n=5, seed=7)]
    hdus = []
    for number, chip in enumerate(chips):
        header = fits.Header({"FILTER": "V", "EXPTIME": 120.0, "DATE-OBS": "2024-01-02T03:04:05", "CHIP": number})
        objects = {"XWIN_WORLD": chip["ra"], "YWIN_WORLD": chip["dec"], "MAG_AUTO": chip["mag"],
                   "MAGERR_AUTO": chip["err"]}
        hdus += [_imhead(header), _table(objects, name="LDAC_OBJECTS")]
    table = read_catalogue(_fits_bytes(*hdus))
    assert (table.file_format, table.n_input, len(table)) == ("FITS_LDAC", 13, 13)
    np.testing.assert_allclose(table.mag, np.concatenate([c["mag"] for c in chips]))
    assert table.header == {"FILTER": "V", "EXPTIME": 120.0, "DATE-OBS": "2024-01-02T03:04:05"}


def test_gzip_compressed_ascii_reads_like_the_plain_file():
    data = _manual_catalogue(_stars(seed=8))
    plain, packed = read_catalogue(data), read_catalogue(gzip.compress(data), filename="field.cat.gz")
    np.testing.assert_array_equal(plain.mag, packed.mag)
    with pytest.raises(CatalogueError, match="gzip-compressed file is damaged"):
        read_catalogue(gzip.compress(data)[:40])


@pytest.mark.parametrize("data", [b"", b"  \n\n"])
def test_empty_file_is_refused(data):
    with pytest.raises(CatalogueError, match="empty"):
        read_catalogue(data)


def test_garbage_bytes_are_refused():
    garbage = np.random.default_rng(9).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(CatalogueError, match="neither a FITS table nor a SExtractor ASCII_HEAD"):
        read_catalogue(garbage)
    with pytest.raises(CatalogueError, match="no SExtractor column header"):
        read_catalogue(b"RA DEC MAG\n1 2 3\n")
    with pytest.raises(CatalogueError, match="named like a FITS file"):
        read_catalogue(b"RA DEC MAG\n1 2 3\n", filename="upload.fits")


def test_fits_image_without_table_is_refused():
    image = fits.PrimaryHDU(np.zeros((8, 8), dtype=np.float32))
    buffer = io.BytesIO()
    image.writeto(buffer)
    with pytest.raises(CatalogueError, match="contains no table"):
        read_catalogue(buffer.getvalue())


def test_too_few_stars_names_the_count_and_the_reasons():
    stars = _stars(n=3, seed=10)
    data = _manual_catalogue(stars) + b"99.0 99.0 150.1 -20.05\n99.0 99.0 150.1 -20.05\n"
    with pytest.raises(CatalogueError, match=r"only 3 of the 5 rows are usable \(dropped: 2 sentinel\)"):
        read_catalogue(data)
    with pytest.raises(CatalogueError, match="has only 3 rows, fewer than the 5 stars"):
        read_catalogue(_manual_catalogue(stars))
    assert len(read_catalogue(data, min_stars=3)) == 3


def test_header_numbering_that_does_not_match_the_rows_is_refused():
    with pytest.raises(CatalogueError, match="header describes at least 4 columns"):
        read_catalogue((MANUAL_HEADER + "1 2 3\n4 5 6\n").encode())


def test_damaged_inputs_only_ever_raise_catalogue_error():
    rng = np.random.default_rng(11)
    stars = _stars(seed=11)
    samples = [_manual_catalogue(stars),
               _fits_bytes(_table({"RA": stars["ra"], "DEC": stars["dec"], "MAG_AUTO": stars["mag"],
                                   "MAGERR_AUTO": stars["err"]}))]
    for sample in samples:
        for _ in range(30):
            damaged = bytearray(sample[: rng.integers(1, len(sample) + 1)])
            for position in rng.integers(0, len(damaged), rng.integers(0, 8)):
                damaged[position] = rng.integers(0, 256)
            try:
                read_catalogue(bytes(damaged))
            except CatalogueError as exc:
                assert str(exc).endswith(".")
