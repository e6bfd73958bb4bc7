"""An event as the sum of its packets: identity, refinement in any order, targets and their reasons."""
from datetime import UTC, datetime

import pytest

from services.ingest.voevents.events import aliases_of, event_id, history_entry, merge, new_event
from services.ingest.voevents.packet import parse_packet
from services.ingest.voevents.policy import VoeventPolicy
from tests.support.voevents import sample

POLICY = VoeventPolicy()
NOW = datetime(2026, 11, 21, tzinfo=UTC)
BAT, XRT = "BAT_GRB_Pos_655721-214.xml", "XRT_Pos_655721-326.xml"


def packet(name):
    return parse_packet(sample(name))


def created(name):
    p = packet(name)
    return new_event(p, history_entry(p, POLICY, via="http", received_at=NOW), alert_id=1, now=NOW)


def add(doc, name):
    p = packet(name)
    return merge(doc, p, history_entry(p, POLICY, via="amqp", received_at=NOW), now=NOW)


def test_gaia_event_has_the_cpcs_ivorn_and_every_name_as_an_alias():
    doc = created("Gaia16aac.xml")
    assert doc["_id"] == "ivo://Gaia16aac" and doc["source"] == "voevent"
    assert set(doc["aliases"]) == {"ivo://Gaia16aac", "ivo://gaia.cam.uk/alerts#Gaia16aac", "Gaia16aac"}
    assert doc["target_usable"] and doc["no_target_reason"] is None
    assert (doc["ra_deg"], doc["dec_deg"]) == (73.29423, 7.35212)


def test_a_later_sharper_packet_refines_the_position_and_both_are_history():
    bat = created(BAT)
    assert bat["_id"] == "ivo://SWIFT_655721" and not bat["target_usable"]
    assert "3 arcmin" in bat["no_target_reason"] and "60 arcsec" in bat["no_target_reason"]
    merged = add(bat, XRT)
    assert merged.position_changed and merged.doc["target_usable"]
    assert (merged.doc["ra_deg"], merged.doc["error_radius_deg"]) == (319.6588, 0.001)
    assert [e["packet_ivorn"].rsplit("#")[1] for e in merged.doc["history"]] == ["BAT_GRB_Pos_655721-214",
                                                                                 "XRT_Pos_655721-326"]
    assert merged.doc["revision"] == bat["revision"] + 1


def test_arrival_order_does_not_change_the_result():
    forward = add(created(BAT), XRT).doc
    backward = add(created(XRT), BAT).doc
    for key in ("ra_deg", "dec_deg", "error_radius_deg", "position_from", "target_usable", "no_target_reason"):
        assert forward[key] == backward[key], key
    assert [e["packet_ivorn"] for e in forward["history"]] == [e["packet_ivorn"] for e in backward["history"]]
    coarse_after_sharp = add(created(XRT), BAT)
    assert not coarse_after_sharp.position_changed


def test_the_same_packet_again_changes_nothing():
    assert add(created(XRT), XRT) is None


def test_cited_packets_are_aliases_so_a_late_original_finds_the_event():
    assert "ivo://nasa.gsfc.gcn/SWIFT#BAT_GRB_Pos_655721-214" in aliases_of(packet(XRT))


@pytest.mark.parametrize(("name", "words"), [
    ("fermi_gbm_flt_pos.xml", "17.43 deg"),
    ("Konus_Lightcurve_2015-07-10T00:28:01.68.xml", "RA=0, Dec=0"),
    ("LVC_S200302c-1-Preliminary.xml", "no position"),
])
def test_packets_without_a_usable_position_are_recorded_without_a_target(name, words):
    doc = created(name)
    assert not doc["target_usable"] and words in doc["no_target_reason"]


def test_unusable_positions_keep_what_is_informative():
    fermi, konus, lvc = created("fermi_gbm_flt_pos.xml"), created("Konus_Lightcurve_2015-07-10T00:28:01.68.xml"), \
        created("LVC_S200302c-1-Preliminary.xml")
    assert (fermi["ra_deg"], fermi["dec_deg"], fermi["error_radius_deg"]) == (193.0, -31.75, 17.4333)
    assert konus["ra_deg"] is None and lvc["ra_deg"] is None


def test_a_wider_limit_makes_the_bat_circle_a_target():
    p = packet(BAT)
    wide = VoeventPolicy(max_error_arcsec=600)
    doc = new_event(p, history_entry(p, wide, via="http", received_at=NOW), alert_id=1, now=NOW)
    assert doc["target_usable"]


def test_an_event_typed_in_by_hand_keeps_its_position_as_history_and_an_alert_refines_it():
    manual = {"_id": "ivo://Gaia16aac", "alert_id": 7, "ra_deg": 73.3, "dec_deg": 7.35, "url": "", "source": "manual",
              "published": NOW, "target_usable": True, "no_target_reason": None}
    merged = add(manual, "Gaia16aac.xml")
    assert sorted(e["via"] for e in merged.doc["history"]) == ["amqp", "manual"]  # by the time each was written
    assert merged.doc["ra_deg"] == 73.29423 and merged.position_changed and merged.doc["revision"] == 1


def test_a_retraction_takes_the_target_away():
    doc = created(XRT)
    retraction = sample(XRT).replace(b'cite="followup"', b'cite="retraction"').replace(b"XRT_Pos_655721-326",
                                                                                        b"XRT_Retract_655721-1")
    p = parse_packet(retraction)
    merged = merge(doc, p, history_entry(p, POLICY, via="http", received_at=NOW), now=NOW)
    assert not merged.doc["target_usable"] and "retracted" in merged.doc["no_target_reason"]


def test_roles_and_streams_are_filtered_with_a_reason():
    policy = VoeventPolicy(streams=("ivo://gaia.cam.uk/",))
    assert policy.ignores("observation", "ivo://gaia.cam.uk/alerts#Gaia16aac") is None
    assert "CPCS_VOEVENT_STREAMS" in policy.ignores("observation", "ivo://nasa.gsfc.gcn/SWIFT#BAT_1")
    assert "role 'test'" in policy.ignores("test", "ivo://gaia.cam.uk/alerts#Gaia16aac")
    assert VoeventPolicy(roles=frozenset({"observation", "test"})).ignores("test", "ivo://a/b#c") is None


def test_event_id_falls_back_to_the_packet_ivorn_without_a_stream_name():
    p = packet("ASASSN_2016-09-25.47_2016fvf_PTSS-16nqb_PS16ejf.xml")
    assert event_id(p) == p.ivorn and aliases_of(p) == [p.ivorn]
