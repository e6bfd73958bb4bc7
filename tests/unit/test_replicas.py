"""``--replicas``: which processes start, and the metrics port each replica serves on."""
from __future__ import annotations

import pytest

from services.launcher import parse_replicas, process_names
from services.local import metrics_ports


def test_replicas_are_read_from_service_equals_count():
    assert parse_replicas("calibration=2, photometry=3") == {"calibration": 2, "photometry": 3}
    assert parse_replicas("") == {} and parse_replicas(None) == {}


@pytest.mark.parametrize(("text", "reason"), [
    ("ingest=2", "SERVICE one of astrometry, photometry, calibration"),
    ("calibration", "SERVICE one of"),
    ("calibration=two", "must be a whole number"),
    ("calibration=0", "from 1 to 16"),
])
def test_a_bad_replica_setting_is_refused_with_the_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_replicas(text)


def test_replicas_are_extra_processes_of_the_same_service():
    names = process_names({"calibration": 3})
    assert [p for p, s in names if s == "calibration"] == ["calibration", "calibration-2", "calibration-3"]
    assert [p for p, _ in names if p.startswith("ingest")] == ["ingest"]
    assert len(process_names()) == 5


def test_replicas_serve_metrics_on_the_ports_after_the_three_services():
    ports = metrics_ports(9181, {"calibration": 2, "photometry": 2})
    assert ports == {"calibration": 9181, "astrometry": 9182, "photometry": 9183, "photometry-2": 9184,
                     "calibration-2": 9185}
    assert len(set(ports.values())) == len(ports)
