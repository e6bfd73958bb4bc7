"""Calibration's handler helpers, pure parts."""
import math

import pytest

from services.calibration.handlers import apply_forced_limit
from shared.contracts import ForcedTarget

NOT_DETECTED = ForcedTarget(ra_deg=295.0, dec_deg=30.1, x_px=511.5, y_px=511.5, in_frame=True, flux_adu=12.0,
                            flux_err_adu=40.0, snr=0.3, detected=False, limit_sigma=5.0, limit_mag_inst=-4.0)


def test_an_image_limit_from_the_noise_gets_the_calibration_uncertainty():
    result = {"status": "limit", "zeropoint": -7.5, "zp_err": 0.01, "scatter": 0.03,
              "small_sample_factor": 1.2, "colour_err": None, "mag": 21.0, "limit_err": 0.4}
    apply_forced_limit(result, NOT_DETECTED)
    assert result["mag"] == pytest.approx(3.5)
    assert result["limit_sigma"] == 5.0 and "forced photometry" in result["limit_method"]
    assert result["limit_err"] == pytest.approx(1.2 * math.hypot(0.01, 0.03))


def test_a_detection_is_left_alone():
    result = {"status": "calibrated", "zeropoint": -7.5, "mag": 17.0, "zp_err": 0.01, "scatter": 0.02}
    apply_forced_limit(result, NOT_DETECTED)
    assert result["mag"] == 17.0 and "limit_err" not in result


def test_a_stored_target_is_read_through_the_contract():
    # a recalibration passes the stored form; it gives the same limit as the message's target
    result = {"status": "limit", "zeropoint": -7.5, "zp_err": 0.01, "scatter": 0.03, "mag": 21.0}
    apply_forced_limit(result, NOT_DETECTED.model_dump(mode="json"))
    assert result["mag"] == pytest.approx(3.5) and result["limit_sigma"] == 5.0

