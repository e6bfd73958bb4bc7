"""Column presets and explicit mappings of the reference-catalogue importer (pure, no database)."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from shared.refcat.presets import (
    PRESETS,
    RefcatError,
    choose_preset,
    default_system,
    find_preset,
    get_preset,
    parse_mapping,
)

RA = [10.0, 10.1, 10.2]
DEC = [-5.0, -5.1, -5.2]


def _table(**columns) -> Table:
    return Table({name: np.asarray(values) for name, values in columns.items()})


def _mags(base: float) -> list[float]:
    return [base, base + 1.0, base + 2.0]


ERRS = [0.01, 0.02, 0.03]


def _vizier(ra_name: str, dec_name: str, bands: dict[str, str]) -> Table:
    cols = {ra_name: RA, dec_name: DEC}
    for i, (col, _band) in enumerate(bands.items()):
        cols[col] = _mags(12.0 + i)
        cols[f"e_{col}"] = ERRS
    return _table(**cols)


# (preset name as typed, survey, table, {band: magnitude column})
LAYOUTS = [
    ("APASS", "APASS", {"RAJ2000": "ra", "DEJ2000": "dec"},
     {"Vmag": "V", "Bmag": "B", "g'mag": "g", "r'mag": "r", "i'mag": "i"}),
    ("ATLAS", "ATLAS", {"RA_ICRS": "ra", "DE_ICRS": "dec"}, {"gmag": "g", "rmag": "r", "imag": "i", "zmag": "z"}),
    ("GaiaDR3", "GaiaDR3", {"RA_ICRS": "ra", "DE_ICRS": "dec"}, {"Gmag": "G", "BPmag": "BP", "RPmag": "RP"}),
    ("PS1", "PS1", {"RAJ2000": "ra", "DEJ2000": "dec"},
     {"gmag": "g", "rmag": "r", "imag": "i", "zmag": "z", "ymag": "y"}),
    ("SDSS", "SDSS", {"RA_ICRS": "ra", "DE_ICRS": "dec"},
     {"umag": "u", "gmag": "g", "rmag": "r", "imag": "i", "zmag": "z"}),
    ("2MASS", "2MASS", {"RAJ2000": "ra", "DEJ2000": "dec"}, {"Jmag": "J", "Hmag": "H", "Kmag": "K"}),
    ("GaiaSP", "GaiaSP", {"RA_ICRS": "ra", "DE_ICRS": "dec"},
     {"UJmag": "U", "BJmag": "B", "VJmag": "V", "RJmag": "R", "IJmag": "I",
      "usdssmag": "u", "gsdssmag": "g", "rsdssmag": "r", "isdssmag": "i", "zsdssmag": "z"}),
]


@pytest.mark.parametrize(("name", "survey", "pos", "bands"), LAYOUTS, ids=[x[0] for x in LAYOUTS])
def test_each_vizier_layout_maps(name, survey, pos, bands):
    ra_col, dec_col = list(pos)
    table = _vizier(ra_col, dec_col, bands)
    preset = get_preset(name)
    assert preset.survey == survey
    stars = preset.map_table(table)
    assert len(stars) == 3
    np.testing.assert_allclose(stars.ra, RA)
    np.testing.assert_allclose(stars.dec, DEC)
    assert sorted(stars.mags) == sorted(bands.values())
    for i, (col, band) in enumerate(bands.items()):
        np.testing.assert_allclose(stars.mags[band], _mags(12.0 + i), err_msg=f"{col} -> {band}")
        np.testing.assert_allclose(stars.errs[band], ERRS)


def test_gaiadr2_ldac_layout_maps():
    table = _table(XWIN_WORLD=RA, YWIN_WORLD=DEC, ERRAWIN_WORLD=[1e-6] * 3, MAG=_mags(15.0), MAGERR=ERRS,
                   OBSDATE=[2015.5] * 3)
    stars = get_preset("GaiaDR2").map_table(table)
    np.testing.assert_allclose(stars.ra, RA)
    np.testing.assert_allclose(stars.mags["G"], _mags(15.0))
    np.testing.assert_allclose(stars.errs["G"], ERRS)
    assert get_preset("GaiaDR2").systems == {"G": "Vega"}


def test_gaia_archive_names_derive_errors_from_flux_snr():
    table = _table(ra=RA, dec=DEC, phot_g_mean_mag=_mags(16.0), phot_g_mean_flux_over_error=[1000.0, 100.0, 10.0],
                   phot_bp_mean_mag=_mags(16.5), phot_bp_mean_flux_over_error=[500.0, 50.0, 5.0])
    preset = get_preset("gaia-archive")
    assert preset.survey == "GaiaDR3"
    stars = preset.map_table(table)
    assert sorted(stars.mags) == ["BP", "G"]  # RP absent: skipped, not an error
    expected = np.hypot(1.0857362 / np.array([1000.0, 100.0, 10.0]), 0.0027553202)
    np.testing.assert_allclose(stars.errs["G"], expected, rtol=1e-6)


def test_aliases_and_case_insensitive_columns():
    # APASS columns spelt without primes and in other case, as some VizieR outputs do.
    table = _table(raj2000=RA, dej2000=DEC, VMAG=_mags(13.0), E_VMAG=ERRS, gmag=_mags(14.0), e_gmag=ERRS)
    stars = get_preset("apass").map_table(table)
    np.testing.assert_allclose(stars.mags["V"], _mags(13.0))
    np.testing.assert_allclose(stars.errs["V"], ERRS)
    np.testing.assert_allclose(stars.mags["g"], _mags(14.0))


def test_exact_case_wins_over_folded_case():
    """Gaia synthetic photometry on VizieR holds both Rmag (Cousins) and rmag (SDSS)."""
    table = _table(RA_ICRS=RA, DE_ICRS=DEC, Rmag=_mags(12.0), rmag=_mags(13.0), e_rmag=ERRS, Imag=_mags(11.0))
    mapping = get_preset("GaiaSP").resolve(table.colnames)
    by_band = {b.band: b for b in mapping.bands}
    assert by_band["R"].mag == "Rmag" and by_band["r"].mag == "rmag" and by_band["I"].mag == "Imag"
    assert by_band["r"].err == "e_rmag" and by_band["R"].err is None  # R must not steal r's error
    stars = mapping.apply(table)
    assert np.isnan(stars.errs["R"]).all()


def test_missing_position_column_is_a_clear_error():
    table = _table(RA=RA, Vmag=_mags(12.0))
    with pytest.raises(RefcatError) as err:
        get_preset("APASS").resolve(table.colnames)
    message = str(err.value)
    assert "dec" in message and "DEJ2000" in message and "RA, Vmag" in message


def test_no_magnitude_column_is_a_clear_error():
    table = _table(RAJ2000=RA, DEJ2000=DEC, Jmag=_mags(12.0))
    with pytest.raises(RefcatError, match="none of its magnitude columns"):
        get_preset("APASS").resolve(table.colnames)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(RefcatError, match="unknown preset or survey 'HIPPARCOS'"):
        get_preset("HIPPARCOS")
    assert find_preset("hipparcos") is None


def test_preset_lookup_by_alias_and_vizier_id():
    assert get_preset("II/336/apass9").survey == "APASS"
    assert get_preset("i/360/syntphot").survey == "GaiaSP"
    assert get_preset("gaiadr2").survey == "GaiaDR2"
    assert get_preset("panstarrs").survey == "PS1"
    assert {p.survey for p in PRESETS} == {"APASS", "ATLAS", "GaiaDR3", "GaiaSP", "PS1", "SDSS", "SkyMapper", "2MASS",
                                           "GaiaDR2", "VSTATLAS", "OGLE3", "USNO", "DES"}
    for p in PRESETS:
        assert p.version and all(b.system in ("AB", "Vega") for b in p.bands)


def test_parse_explicit_mapping():
    preset = parse_mapping("ra=RAJ2000, dec=DEJ2000,V=Vmag,V_err=e_Vmag,g=gmag", survey="MyCat", version="v2")
    assert preset.survey == "MyCat" and preset.version == "v2" and preset.strict
    assert preset.ra == ("RAJ2000",) and preset.dec == ("DEJ2000",)
    assert [(b.band, b.mag, b.err, b.system) for b in preset.bands] == [
        ("V", ("Vmag",), ("e_Vmag",), "Vega"), ("g", ("gmag",), (), "AB")]
    table = _table(RAJ2000=RA, DEJ2000=DEC, Vmag=_mags(12.0), e_Vmag=ERRS, gmag=_mags(13.0))
    stars = preset.map_table(table)
    np.testing.assert_allclose(stars.errs["V"], ERRS)
    assert np.isnan(stars.errs["g"]).all()


def test_explicit_mapping_unknown_column_is_a_clear_error():
    preset = parse_mapping("ra=RAJ2000,dec=DEJ2000,V=Vmag,V_err=eV", survey="X")
    table = _table(RAJ2000=RA, DEJ2000=DEC, Vmag=_mags(12.0))
    with pytest.raises(RefcatError, match=r"V error \(tried eV\)"):
        preset.resolve(table.colnames)
    preset = parse_mapping("ra=RAJ2000,dec=DEJ2000,R=Rmag", survey="X")
    with pytest.raises(RefcatError, match=r"R magnitude \(tried Rmag\)"):
        preset.resolve(table.colnames)


@pytest.mark.parametrize("text, message", [
    ("ra=RAJ2000,V=Vmag", "needs ra=COLUMN and dec=COLUMN"),
    ("ra=RAJ2000,dec=DEJ2000", "names no magnitude column"),
    ("ra=RAJ2000,dec=DEJ2000,Vmag", "write key=COLUMN"),
    ("ra=RAJ2000,dec=DEJ2000,V=Vmag,B_err=e_Bmag", "no magnitude for band B"),
])
def test_explicit_mapping_syntax_errors(text, message):
    with pytest.raises(RefcatError, match=message):
        parse_mapping(text, survey="X")


def test_choose_preset():
    assert choose_preset(survey="apass").survey == "APASS"
    assert choose_preset(survey="apass", version="synthetic-demo-1").version == "synthetic-demo-1"
    assert choose_preset(survey="Mine", preset="2mass").survey == "Mine"
    explicit = choose_preset(survey="GaiaDR3", columns="ra=ra,dec=dec,G=gmag")
    assert explicit.strict and explicit.survey == "GaiaDR3" and explicit.systems == {"G": "Vega"}
    assert explicit.epoch == 2016.0  # metadata from the survey's preset
    with pytest.raises(RefcatError, match="no preset for survey 'Mine'"):
        choose_preset(survey="Mine")
    with pytest.raises(RefcatError, match="unknown preset 'nope'"):
        choose_preset(survey="APASS", preset="nope")


def test_default_systems():
    assert [default_system(b) for b in ("V", "B", "g", "r", "J", "Ks", "G", "BP", "z", "y")] == [
        "Vega", "Vega", "AB", "AB", "Vega", "Vega", "Vega", "Vega", "AB", "AB"]


def test_cleaning_sentinels_masks_and_missing_positions():
    table = Table()
    table["RAJ2000"] = MaskedColumn([1.0, 2.0, 3.0, 4.0], mask=[False, True, False, False])
    table["DEJ2000"] = [1.0, 2.0, np.nan, 95.0]
    table["Vmag"] = MaskedColumn([99.0, 12.0, 13.0, 14.0], mask=[False, False, False, False])
    table["e_Vmag"] = MaskedColumn([0.01, 0.02, 0.03, 0.04], mask=[False, False, False, False])
    table["Bmag"] = MaskedColumn([12.0, 12.0, 13.0, 14.0], mask=[True, False, False, False])
    table["e_Bmag"] = [9.99, 0.1, 0.1, 0.1]
    stars = get_preset("APASS").map_table(table)
    assert len(stars) == 1 and stars.n_input == 4  # no ra, no dec, dec out of range: dropped
    assert np.isnan(stars.mags["V"][0]) and np.isnan(stars.errs["V"][0])  # 99 sentinel; its error dropped too
    assert np.isnan(stars.mags["B"][0]) and np.isnan(stars.errs["B"][0])


def test_string_and_sexagesimal_positions():
    table = _table(RAJ2000=["10:00:00.0", "23:59:59.0", ""], DEJ2000=["+10:30:00", "-00:30:00", "+1:00:00"],
                   Vmag=["12.5", "", "13.0"])
    stars = get_preset("APASS").map_table(table)
    assert len(stars) == 2
    np.testing.assert_allclose(stars.ra, [150.0, 359.9958333], atol=1e-6)
    np.testing.assert_allclose(stars.dec, [10.5, -0.5])
    np.testing.assert_allclose(stars.mags["V"], [12.5, np.nan])
    numeric_text = _table(RAJ2000=["150.5", "359.9"], DEJ2000=["-1.5", "2"], Vmag=[12.0, 13.0])
    np.testing.assert_allclose(get_preset("APASS").map_table(numeric_text).ra, [150.5, 359.9])


def test_positions_in_radians_are_converted():
    table = Table({"RA_ICRS": np.radians(RA), "DE_ICRS": np.radians(DEC), "Gmag": _mags(15.0)})
    table["RA_ICRS"].unit = "rad"
    table["DE_ICRS"].unit = "rad"
    stars = get_preset("GaiaDR3").map_table(table)
    np.testing.assert_allclose(stars.ra, RA)
    np.testing.assert_allclose(stars.dec, DEC)
