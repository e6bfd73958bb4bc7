"""The shared parameter model and the science's parameters agree; overrides read as before."""
import dataclasses

import pytest

from services.calibration.science.result import CalibrationParams
from services.calibration.work import params_with
from shared.calibration_params import VERSION, CalibrationParameters


def test_the_shared_model_has_the_science_fields_and_defaults():
    science = CalibrationParams()
    assert [f.name for f in dataclasses.fields(CalibrationParams)] == list(CalibrationParameters.model_fields)
    assert CalibrationParameters().as_dict() == science.to_dict()
    assert params_with({}) == science and params_with({}).hash() == science.hash()
    assert CalibrationParameters.version == VERSION == "1"


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
