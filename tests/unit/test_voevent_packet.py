"""Reading real VOEvent packets, messy ones included, into plain values."""
import re

import pytest

from services.ingest.voevents.packet import PacketError, parse_packet
from tests.support.voevents import SAMPLES, sample, synthetic_packet

# file: (role, version, stream's name, RA, Dec, error radius in deg or None; None when no position)
EXPECTED = {
    "Gaia16aac.xml": ("observation", "2.0", "Gaia16aac", (73.29423, 7.35212, 0.00002)),
    "ASASSN_2016-09-25.47_2016fvf_PTSS-16nqb_PS16ejf.xml": ("observation", "2.0", None,
                                                            (345.0172083, 17.8481111, 0.0044444)),
    "BAT_GRB_Pos_655721-214.xml": ("observation", "2.0", "SWIFT_655721", (319.7309, -34.8537, 0.05)),
    "XRT_Pos_655721-326.xml": ("observation", "2.0", "SWIFT_655721", (319.6588, -34.9131, 0.001)),
    "SWIFT_bat_position_v2.0_example.xml": ("observation", "2.0", "SWIFT_532871", (74.7412, -9.3137, 0.05)),
    "SWIFT_xrt_position_v1.1_example.xml": ("observation", "1.1", "SWIFT_644259", (314.7162, -53.393, 0.0009)),
    "fermi_gbm_flt_pos.xml": ("observation", "1.1", "Fermi_336801278", (193.0, -31.75, 17.4333)),
    "Konus_Lightcurve_2015-07-10T00:28:01.68.xml": ("observation", "2.0", "KONUS_1721301681", (0.0, 0.0, None)),
    "MOA_Lensing_Event_2015-07-10T14_50_54.00.xml": ("observation", "2.0", "MOA_201500354",
                                                     (268.686, -29.7073, None)),
    "LVC_S200302c-1-Preliminary.xml": ("observation", "2.0", "S200302c", None),
    "no_namespace_packet.xml": ("test", "2.0", None, (0.0, 0.0, None)),
}


def test_every_sample_is_listed():
    assert {p.name for p in SAMPLES.glob("*.xml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_identity_and_position(name):
    role, version, transient, where = EXPECTED[name]
    packet = parse_packet(sample(name))
    assert (packet.role, packet.version, packet.name) == (role, version, transient)
    assert packet.ivorn.startswith("ivo://") and packet.stream == packet.ivorn.split("#")[0]
    assert packet.cpcs_ivorn == (f"ivo://{transient}" if transient else None)
    if where is None:
        assert packet.position is None and "no position" in packet.position_problem
        return
    ra, dec, error = where
    assert packet.position.ra_deg == pytest.approx(ra, abs=1e-6)
    assert packet.position.dec_deg == pytest.approx(dec, abs=1e-6)
    assert packet.position.error_radius_deg == (pytest.approx(error, rel=1e-4) if error else None)
    assert packet.observed_mjd is not None and 55000 < packet.observed_mjd < 60000


def test_gaia_unnamed_params_give_the_name_and_band_and_the_alert_magnitude():
    packet = parse_packet(sample("Gaia16aac.xml"))
    assert packet.name == "Gaia16aac" and packet.survey == "Gaia"
    assert packet.url == "http://gsaweb.ast.cam.ac.uk/alerts/alert/Gaia16aac"
    [point] = packet.photometry
    assert (point.band, point.mag, point.mag_err) == ("G", 17.32, 0.05)
    assert packet.baseline_mag is None and any("empty" in note for note in packet.notes)


def test_gaia_alert_time_is_on_the_published_discovery_curve():
    """The alert's epoch (TCB, barycentric) is the Gaia light curve's first detection, 17.31 at JD 2457403.828."""
    packet = parse_packet(sample("Gaia16aac.xml"))
    assert packet.time_scale == "TCB"
    assert packet.observed_mjd == pytest.approx(2457403.828 - 2400000.5, abs=0.002)
    curve = (SAMPLES.parent / "lightcurves" / "Gaia16aac_gaia_alerts_G.csv").read_text()
    first = next(line for line in curve.splitlines() if re.match(r"^\d{4}-.*,\d+\.\d+,\d", line))
    assert float(first.split(",")[2]) == pytest.approx(packet.photometry[0].mag, abs=0.05)


def test_asassn_magnitude_band_comes_from_the_param_name_and_mojibake_is_repaired():
    packet = parse_packet(sample("ASASSN_2016-09-25.47_2016fvf_PTSS-16nqb_PS16ejf.xml"))
    assert [(p.band, p.mag, p.mag_err) for p in packet.photometry] == [("V", 17.41, None)]
    assert packet.survey == "ASAS-SN"
    assert "+17°50'53" in packet.params["comment"]


def test_a_position_given_only_as_sexagesimal_params_is_read():
    data = re.sub(rb"<WhereWhen>.*</WhereWhen>", b"", sample("ASASSN_2016-09-25.47_2016fvf_PTSS-16nqb_PS16ejf.xml"),
                  flags=re.S)
    packet = parse_packet(data)
    assert packet.position.source == "Params" and packet.position.error_radius_deg is None
    # 23:0:4.13 +17:50:53.2, the same place as the packet's WhereWhen within an arcsecond
    assert packet.position.ra_deg == pytest.approx(345.0172083, abs=1 / 3600)
    assert packet.position.dec_deg == pytest.approx(17.8481111, abs=1 / 3600)


def test_text_that_is_not_the_utf8_it_declares_is_read_as_windows_1252():
    data = sample("ASASSN_2016-09-25.47_2016fvf_PTSS-16nqb_PS16ejf.xml").replace("Â°".encode(), b"\xb0")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    packet = parse_packet(data)
    assert any("Windows-1252" in note for note in packet.notes)
    assert "+17°50'53" in packet.params["comment"] and packet.position.source == "WhereWhen"


def test_packet_without_namespace_prefix_and_version_1_1_stc_namespace_read_alike():
    bare = parse_packet(sample("no_namespace_packet.xml"))
    assert bare.ivorn == "ivo://com.dc3/dc3.broker#BrokerTest-2014-02-24T15:55:27.72" and bare.role == "test"
    fermi = parse_packet(sample("fermi_gbm_flt_pos.xml"))
    assert fermi.position.system == "FK5-UTC-GEO"
    assert [c.cite for c in fermi.citations] == ["followup"]


def test_citations_and_the_leading_newline_some_feeds_send():
    packet = parse_packet(b"\n  " + sample("XRT_Pos_655721-326.xml"))
    assert [(c.ivorn, c.cite) for c in packet.citations] == [
        ("ivo://nasa.gsfc.gcn/SWIFT#BAT_GRB_Pos_655721-214", "followup")]


@pytest.mark.parametrize(("data", "words"), [
    (b"", "empty"),
    (b"this is not xml", "not well-formed XML"),
    (b"<VOEvent role='observation'><Who/></VOEvent>", "no usable ivorn"),
    (b"<VOEvent ivorn='ivo://x/y#1' role='rumour'/>", "role 'rumour'"),
    (b"<?xml version='1.0'?><trn:Transport xmlns:trn='http://www.telescope-networks.org/xml/Transport/v1.1' "
     b"role='iamalive'><Origin>ivo://b</Origin></trn:Transport>", "not a <VOEvent>"),
    (b"<?xml version='1.0'?><!DOCTYPE VOEvent [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;'>]>"
     b"<VOEvent ivorn='ivo://x/y#1' role='observation'><What><Description>&b;</Description></What></VOEvent>",
     "DOCTYPE"),
])
def test_what_is_not_a_readable_packet_is_refused_with_the_reason(data, words):
    with pytest.raises(PacketError, match=re.escape(words)):
        parse_packet(data)


def test_synthetic_packets_are_distinct_transients():
    first, second = parse_packet(synthetic_packet(1)), parse_packet(synthetic_packet(2))
    assert first.name != second.name and first.position != second.position
    assert [(p.band, p.mag_err) for p in first.photometry] == [("R", 0.05)]
