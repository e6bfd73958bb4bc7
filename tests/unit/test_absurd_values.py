"""Absurd numbers are refused where they enter, with the reason: times no observation can have,
exposures no frame can have, a negative VOEvent error circle, NaN or infinity in a message."""
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.ingest.checks import MJD_RANGE, implausible_exposure, implausible_mjd
from services.ingest.cpcs_fields import request_from_fields
from services.ingest.errors import InvalidInput
from services.ingest.voevents.events import history_entry, new_event
from services.ingest.voevents.packet import parse_packet
from services.ingest.voevents.policy import VoeventPolicy
from shared.errors import PermanentError
from shared.messaging import decode
from tests.support.voevents import synthetic_packet

NOW_MJD = 61375.0
EVENT = {"_id": "ivo://Gaia26xyz", "ra_deg": 150.1, "dec_deg": 2.2}  # no known time: only the range judges
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"
NOW = datetime(2026, 11, 21, tzinfo=UTC)


@pytest.mark.parametrize("mjd", [1e308, -1e308, float("nan"), float("inf"), 1.0, 14999.9, 100000.1, 3.0e6])
def test_an_mjd_outside_the_range_is_refused_with_the_range(mjd):
    refusal = implausible_mjd(mjd, EVENT, now=NOW_MJD)
    assert refusal is not None and "is not a time of an observation" in refusal
    assert f"MJD {MJD_RANGE[0]:g} to {MJD_RANGE[1]:g}" in refusal


@pytest.mark.parametrize("mjd", [15000.0, 45000.0, 61375.5])
def test_an_mjd_inside_the_range_passes(mjd):
    assert implausible_mjd(mjd, EVENT, now=NOW_MJD) is None


def test_a_julian_date_still_gets_its_conversion():
    assert "MJD = JD - 2400000.5 = 61365.10000" in implausible_mjd(2461365.6, EVENT, now=NOW_MJD)


@pytest.mark.parametrize("exptime", [0.0, -1.0, 1e308, float("inf"), float("nan"), 1.0e6 + 1])
def test_an_impossible_exposure_is_refused(exptime):
    assert "is not an exposure time" in implausible_exposure(exptime)


def test_a_possible_exposure_passes():
    assert implausible_exposure(None) is None and implausible_exposure(0.01) is None
    assert implausible_exposure(36000.0) is None


def test_an_absurd_exposure_in_the_form_is_refused_before_anything_is_read():
    fields = {"EventID": "ivo://Gaia26xyz", "MJD": "61365.1", "expTime": "1e308"}
    with pytest.raises(InvalidInput, match="expTime must be at most 1e"):
        request_from_fields(fields, b"", "x.cat", "token")


def test_a_negative_voevent_error_radius_gives_no_target():
    packet = parse_packet(synthetic_packet(7, error_deg=-0.001))
    doc = new_event(packet, history_entry(packet, VoeventPolicy(), via="http", received_at=NOW), alert_id=1,
                    now=NOW)
    assert doc["target_usable"] is False
    assert "radius of -0.001 deg" in doc["no_target_reason"] and "malformed" in doc["no_target_reason"]


def test_a_positive_voevent_error_radius_still_gives_a_target():
    packet = parse_packet(synthetic_packet(7, error_deg=0.001))
    doc = new_event(packet, history_entry(packet, VoeventPolicy(), via="http", received_at=NOW), alert_id=1,
                    now=NOW)
    assert doc["target_usable"] is True


@pytest.mark.parametrize(("path", "value", "where"), [
    (("result", "mag"), "NaN", "result.mag"),
    (("result", "mag_err"), "Infinity", "result.mag_err"),
    (("mjd",), "-Infinity", "mjd"),
])
def test_a_message_with_a_non_finite_number_is_refused_for_good_with_where(path, value, where):
    doc = json.loads((SAMPLES / "observation.calibrated.v1.json").read_text())
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = 1.2345e99  # a marker replaced by the bare JSON token, as json.dumps(nan) writes it
    body = json.dumps(doc).replace("1.2345e+99", value).encode()
    assert value.encode() in body
    with pytest.raises(PermanentError, match=f"finite number at {where}"):
        decode("observation.calibrated.v1", body)
