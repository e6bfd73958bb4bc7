"""Calibration's handler helpers, pure parts."""
import math

import pytest

from services.calibration.handlers import apply_forced_limit


def test_an_image_limit_from_the_noise_gets_the_calibration_uncertainty():
    result = {"status": "limit", "zeropoint": -7.5, "zp_err": 0.01, "scatter": 0.03,
              "small_sample_factor": 1.2, "colour_err": None, "mag": 21.0, "limit_err": 0.4}
    apply_forced_limit(result, {"limit_mag_inst": -4.0, "limit_sigma": 5.0})
    assert result["mag"] == pytest.approx(3.5)
    assert result["limit_sigma"] == 5.0 and "forced photometry" in result["limit_method"]
    assert result["limit_err"] == pytest.approx(1.2 * math.hypot(0.01, 0.03))


def test_a_detection_is_left_alone():
    result = {"status": "calibrated", "zeropoint": -7.5, "mag": 17.0, "zp_err": 0.01, "scatter": 0.02}
    apply_forced_limit(result, {"limit_mag_inst": -4.0, "limit_sigma": 5.0})
    assert result["mag"] == 17.0 and "limit_err" not in result
