"""Every survey of the original's force-filter list has a layout: VST ATLAS, OGLE-III, USNO-B1 (and DES DR2)
beside APASS, PS1, SDSS, Gaia and 2MASS."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from shared.refcat.presets import get_preset
from shared.refcat.surveys import lookup

#: The original server's force-filter drop-down (its uploader page), survey/band as it wrote them.
ORIGINAL_FORCE_FILTERS = (
    "PS1/i PS1/r PS1/z PS1/g APASS/i APASS/r APASS/B APASS/g APASS/V VSTATLAS/i VSTATLAS/r VSTATLAS/u VSTATLAS/z "
    "VSTATLAS/g OGLE3/I OGLE3/V USNO/R1pg USNO/R2pg USNO/B1pg USNO/Ipg USNO/B2pg GAIA/G SDSS/B SDSS/g SDSS/i SDSS/I "
    "SDSS/r SDSS/u SDSS/V SDSS/R SDSS/z 2MASS/H 2MASS/K 2MASS/J").split()


@pytest.mark.parametrize("force_filter", ORIGINAL_FORCE_FILTERS)
def test_every_original_force_filter_names_a_known_survey_and_band(force_filter):
    survey_name, band = force_filter.split("/")
    survey = lookup(survey_name)
    assert survey is not None, survey_name
    preset = get_preset(survey.preset)
    assert band in preset.band_names or band in preset.derivable, (force_filter, preset.band_names)


def rows(columns: dict[str, list]) -> Table:
    return Table({name: np.asarray(values) for name, values in columns.items()})


def test_vst_atlas_layout_reads_vizier_and_vsa_columns():
    vizier = rows({"RAJ2000": [10.0, 10.1], "DEJ2000": [-30.0, -30.1], "gmag": [16.1, 17.2], "e_gmag": [0.01, 0.02],
                   "rmag": [15.5, 16.0], "e_rmag": [0.01, 0.02]})
    stars = get_preset("vstatlas").map_table(vizier)
    assert stars.mags["g"].tolist() == [16.1, 17.2] and stars.errs["r"].tolist() == [0.01, 0.02]
    vsa = rows({"RA2000": [10.0], "DEC2000": [-30.0], "iAperMag3": [15.0], "iAperMag3Err": [0.03]})
    assert get_preset("vstatlas").map_table(vsa).errs["i"].tolist() == [0.03]


def test_ogle3_layout_reads_i_and_v():
    table = rows({"RAJ2000": [80.0], "DEJ2000": [-69.0], "Imag": [17.3], "e_Imag": [0.02], "Vmag": [18.1],
                  "e_Vmag": [0.03]})
    stars = get_preset("ogle3").map_table(table)
    assert (stars.mags["I"][0], stars.errs["V"][0]) == (17.3, 0.03)


def test_usno_b1_photographic_magnitudes_get_the_assumed_error():
    table = rows({"RAJ2000": [150.0, 150.1], "DEJ2000": [2.0, 2.1], "B1mag": [17.1, 99.99], "R1mag": [16.2, 16.9],
                  "B2mag": [17.0, 18.0], "R2mag": [16.1, 16.8], "Imag": [15.7, 16.3]})
    stars = get_preset("usnob1").map_table(table)
    assert stars.errs["R1pg"].tolist() == [0.25, 0.25]
    assert np.isnan(stars.mags["B1pg"][1]) and np.isnan(stars.errs["B1pg"][1])  # a sentinel stays missing
    assert stars.mags["Ipg"].tolist() == [15.7, 16.3]


def test_des_dr2_layout_reads_vizier_and_noirlab_columns_and_stores_y():
    noirlab = rows({"RA": [50.0], "DEC": [-40.0], "WAVG_MAG_PSF_G": [19.1], "WAVG_MAGERR_PSF_G": [0.01],
                    "WAVG_MAG_PSF_Y": [18.0], "WAVG_MAGERR_PSF_Y": [0.05]})
    stars = get_preset("desdr2").map_table(noirlab)
    assert (stars.mags["g"][0], stars.errs["y"][0]) == (19.1, 0.05)
    assert lookup("DESDR2").name == "DES" and lookup("USNO-B1").name == "USNO" and lookup("OGLE-III").name == "OGLE3"


def test_a_forced_usno_photographic_band_calibrates():
    """``forceFilter=USNO/R1pg`` (the original's spelling) is honoured by the calibration."""
    from services.calibration.science.calibrate import calibrate
    from services.calibration.science.simulate import FieldSpec, simulate
    from shared.refcat.model import ReferenceStars

    sim = simulate(FieldSpec(seed=11, n_catalogue=300, band="r", declared_filter="r", zeropoint_mag=-24.0,
                             outlier_fraction=0.05, target_snr=80.0, depth_mag=19.0))
    apass = next(r for r in sim.references if r.survey == "APASS")
    usno = ReferenceStars(survey="USNO", version="B1.0", ra_deg=apass.ra_deg, dec_deg=apass.dec_deg,
                          mags={"R1pg": apass.mags["r"]}, mag_errs={"R1pg": np.full(len(apass), 0.25)})
    result = calibrate(sim.stars, [usno], target_ra_deg=sim.target_ra_deg, target_dec_deg=sim.target_dec_deg,
                       force_filter="USNO/R1pg", declared_filter="r")
    assert (result.survey, result.band, result.mode) == ("USNO", "R1pg", "FORCED"), result.reason
    assert abs(result.zeropoint - sim.truth.zeropoint_at_median_mag) < 0.1
