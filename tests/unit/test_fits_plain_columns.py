"""FITS tables read straight from their bytes give exactly what astropy's ``hdu.data`` and ``Header`` give:
on every real FITS catalogue of the shared data folder, and on tables of every column type astropy writes."""
from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits

from shared.catalogue import CatalogueError, _fits, read_catalogue

FITS_SUFFIXES = (".fits", ".fit", ".cat", ".ldac")


def _through_astropy(monkeypatch) -> None:
    """Make the reader take astropy's ``hdu.data`` and whole headers for every table."""
    monkeypatch.setattr(_fits, "_plain_columns", lambda header, data, offset: None)
    monkeypatch.setattr(_fits, "_imhead_keywords", lambda hdu, data: _fits.image_keywords(_fits._imhead_header(hdu)))


def _outcome(data: bytes, name: str):
    try:
        table = read_catalogue(data, filename=name)
    except CatalogueError as exc:
        return ("refused", str(exc))
    return (table.file_format, table.mag_column, table.n_input, table.n_dropped, table.header, table.exptime_s,
            table.ra_deg.tobytes(), table.dec_deg.tobytes(), table.mag.tobytes(), table.mag_err.tobytes())


def test_every_real_fits_catalogue_reads_the_same_as_through_astropy(shared_data, monkeypatch):
    files = sorted(p for p in (shared_data / "catalogues").iterdir() if p.suffix.lower() in FITS_SUFFIXES
                   and p.read_bytes()[:9] == b"SIMPLE  =")
    assert len(files) >= 8
    read_plain, plain_columns = [], _fits._plain_columns

    def counted(header, data, offset):
        columns = plain_columns(header, data, offset)
        read_plain.append(columns is not None)
        return columns

    monkeypatch.setattr(_fits, "_plain_columns", counted)
    plain = {p.name: _outcome(p.read_bytes(), p.name) for p in files}
    assert sum(read_plain) >= 6  # most of these tables took the plain way
    _through_astropy(monkeypatch)
    for path in files:
        assert plain[path.name] == _outcome(path.read_bytes(), path.name), path.name
    assert sum(o[0] == "FITS_LDAC" for o in plain.values()) >= 3  # LDAC files were read, not refused


def _table_bytes(columns: list[fits.Column], *, header: fits.Header | None = None) -> bytes:
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(header=header), fits.BinTableHDU.from_columns(columns)]).writeto(out)
    return out.getvalue()


def _astropy_columns(data: bytes) -> dict[str, np.ndarray]:
    with fits.open(io.BytesIO(data)) as hdus:
        hdu = hdus[1]
        return {n.upper(): np.asarray(hdu.data[n]).astype(np.float64) for n in hdu.columns.names
                if np.asarray(hdu.data[n]).dtype.kind in "biuf" and np.asarray(hdu.data[n]).ndim in (1, 2)}


def _plain(data: bytes):
    with fits.open(io.BytesIO(data)) as hdus:
        return _fits._plain_columns(hdus[1].header, data, hdus[1].fileinfo()["datLoc"])


def test_plain_column_types_match_astropy_exactly():
    rng = np.random.default_rng(7)
    n = 257
    columns = [fits.Column("B", "B", array=rng.integers(0, 255, n)),
               fits.Column("I", "I", array=rng.integers(-30000, 30000, n)),
               fits.Column("J", "J", array=rng.integers(-2**31, 2**31 - 1, n)),
               fits.Column("K", "K", array=rng.integers(-2**40, 2**40, n)),
               fits.Column("ALPHA_J2000", "D", array=rng.uniform(0, 360, n)),
               fits.Column("MAG_AUTO", "E", array=rng.normal(15, 2, n).astype(np.float32)),
               fits.Column("NAME", "12A", array=[f"star{i}" for i in range(n)]),
               fits.Column("MAG_APER", "3E", array=rng.normal(15, 2, (n, 3)).astype(np.float32)),
               fits.Column("FLUX_APER", "2D", array=rng.normal(1e4, 1e3, (n, 2)))]
    data = _table_bytes(columns)
    plain = _plain(data)
    assert plain is not None and list(plain) == list(_astropy_columns(data))
    for name, values in _astropy_columns(data).items():
        assert plain[name].dtype == np.float64 and np.array_equal(plain[name], values, equal_nan=True), name
    assert plain["MAG_APER"].shape == (n, 3)


@pytest.mark.parametrize("column", [
    fits.Column("U", "I", bzero=32768, array=np.arange(10, dtype=np.uint16)),  # scaled: unsigned
    fits.Column("S", "E", bscale=2.0, array=np.arange(10, dtype=np.float32)),
    fits.Column("L", "L", array=np.arange(10) % 2 == 0),  # logical
    fits.Column("X", "8X", array=np.zeros((10, 8), dtype=bool)),  # bits
    fits.Column("C", "C", array=np.arange(10) * (1 + 1j)),  # complex
    fits.Column("M", "6E", dim="(3,2)", array=np.zeros((10, 2, 3), dtype=np.float32)),  # two dimensions
    fits.Column("P", "PJ()", array=np.array([np.arange(i % 3 + 1) for i in range(10)], dtype=object)),  # heap
])
def test_any_other_column_leaves_the_table_to_astropy_which_reads_it_as_before(column):
    data = _table_bytes([fits.Column("MAG_AUTO", "E", array=np.arange(10, dtype=np.float32)), column])
    assert _plain(data) is None


def test_a_table_without_rows_is_left_to_astropy():
    assert _plain(_table_bytes([fits.Column("MAG_AUTO", "E", array=np.zeros(0, dtype=np.float32))])) is None


def _ldac(image_cards: list[tuple[str, object]], *, card_per_element: bool) -> bytes:
    image = fits.Header(image_cards)
    text = image.tostring(sep="", endcard=True, padding=False)
    if card_per_element:  # TDIM (80, n): astropy writes each card without its trailing blanks, NUL-padded
        n = len(text) // 80
        column = fits.Column("Field Header Card", f"{len(text)}A", dim=f"(80, {n})",
                             array=np.array([[text[i:i + 80] for i in range(0, len(text), 80)]]))
    else:
        column = fits.Column("Field Header Card", f"{len(text)}A", array=[text])
    imhead = fits.BinTableHDU.from_columns([column])
    imhead.name = "LDAC_IMHEAD"
    rng = np.random.default_rng(3)
    n = 40
    objects = fits.BinTableHDU.from_columns([
        fits.Column("ALPHA_J2000", "D", array=210 + rng.uniform(0, 0.1, n)),
        fits.Column("DELTA_J2000", "D", array=-12 + rng.uniform(0, 0.1, n)),
        fits.Column("MAG_AUTO", "E", array=rng.uniform(-14, -8, n).astype(np.float32)),
        fits.Column("MAGERR_AUTO", "E", array=np.full(n, 0.02, dtype=np.float32))])
    objects.name = "LDAC_OBJECTS"
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), imhead, objects]).writeto(out)
    return out.getvalue()


@pytest.mark.parametrize("card_per_element", [False, True])
def test_the_image_keywords_of_an_ldac_header_are_astropy_s(monkeypatch, card_per_element):
    cards = [("FILTER", "rp"), ("EXPTIME", 115), ("MJD-OBS", 57428.123456789), ("OBJECT", "Gaia16aye 'b'"),
             ("TELESCOP", "1m0-13"), ("L1ZP", True), ("DATE-OBS", ""), ("COMMENT", "FILTER = 'no'"),
             ("FILTER", "second")]  # a second FILTER card: the first counts, as in astropy's Header
    data = _ldac(cards, card_per_element=card_per_element)
    plain = read_catalogue(data, filename="x.ldac").header
    assert plain == {"FILTER": "rp", "EXPTIME": 115.0, "MJD-OBS": 57428.123456789, "OBJECT": "Gaia16aye 'b'",
                     "TELESCOP": "1m0-13"}
    _through_astropy(monkeypatch)
    assert read_catalogue(data, filename="x.ldac").header == plain
