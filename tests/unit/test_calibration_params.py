"""The calibration parameters are declared once; overrides read as before."""
import json

import pytest

import shared.calibration_params_model as shared_model
from services.calibration.science.result import CalibrationParams
from services.calibration.work import params_with
from shared.calibration_params import VERSION, CalibrationParameters


def test_the_science_and_the_services_use_one_declaration():
    assert CalibrationParams is CalibrationParameters is shared_model.CalibrationParameters
    science = CalibrationParams()
    assert CalibrationParameters().as_dict() == science.to_dict() == json.loads(science.canonical_json())
    assert science.as_dict()["astrometric_surveys"] == list(science.astrometric_surveys)
    assert params_with({}) == science and params_with({}).hash() == science.hash()
    assert CalibrationParameters.version == VERSION == "1"


def test_the_science_parameters_are_validated():
    with pytest.raises(ValueError, match="colour_criterion"):
        CalibrationParams(colour_criterion="chi2")
    with pytest.raises(ValueError, match="unknown calibration parameters: bogus"):
        CalibrationParams.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="calibration parameter min_npoints: "):
        CalibrationParams.from_dict({"min_npoints": "many"})
    stored = CalibrationParams.from_dict({"astrometric_surveys": ["GaiaDR3"], "limit_sigma": 3})
    assert stored.astrometric_surveys == ("GaiaDR3",) and stored.limit_sigma == 3.0


def test_overrides_from_text_and_json_read_as_before():
    params = params_with({"min_npoints": "7", "limit_sigma": 3, "use_colour_terms": "no",
                          "astrometric_surveys": "GaiaDR3, Gaia", "scatter_prior_mag": "none",
                          "exclude_target_from_fit": False, "max_scatter_mag": "0.4"})
    assert (params.min_npoints, params.limit_sigma, params.use_colour_terms) == (7, 3.0, False)
    assert params.astrometric_surveys == ("GaiaDR3", "Gaia") and params.scatter_prior_mag is None
    assert params.exclude_target_from_fit is False and params.max_scatter_mag == 0.4
    assert params_with({"scatter_prior_mag": "0.03"}).scatter_prior_mag == 0.03
    assert params_with({"use_declared_filter": "TRUE"}).use_declared_filter is True


@pytest.mark.parametrize(("overrides", "words"), [
    ({"nonsense": 1, "min_npoints": 3}, "unknown calibration parameter(s) nonsense; known: "),
    ({"min_npoints": "many"}, "calibration parameter min_npoints must be a int, got 'many'"),
    ({"limit_sigma": "x"}, "calibration parameter limit_sigma must be a float, got 'x'"),
    ({"colour_criterion": "chi2"}, "calibration parameter colour_criterion: "),
    ({"min_npoints": None}, "calibration parameter min_npoints: "),
])
def test_bad_overrides_are_refused_with_the_parameter_named(overrides, words):
    with pytest.raises(ValueError) as caught:
        CalibrationParameters.with_overrides(overrides)
    assert words in str(caught.value)
    with pytest.raises(ValueError):
        params_with(overrides)


def test_a_list_parameter_needs_names():
    with pytest.raises(ValueError, match="astrometric_surveys must be a list of names, got 3"):
        CalibrationParameters.with_overrides({"astrometric_surveys": 3})


def test_the_default_parameter_hash_is_unchanged():
    """Stored calibrations stay comparable: the defaults hash as they always did."""
    assert CalibrationParameters().hash() == CalibrationParams().hash() == "6dcdb13654e673f3"
    changed = CalibrationParameters.with_overrides({"min_npoints": 7})
    assert changed.hash() == params_with({"min_npoints": 7}).hash() != "6dcdb13654e673f3"


def test_overrides_apply_over_a_given_set():
    base = CalibrationParameters(min_npoints=8)
    assert params_with({"limit_sigma": 3}, base) == CalibrationParams(min_npoints=8, limit_sigma=3.0)
    assert CalibrationParameters.with_overrides({}, base) == base
