"""VOEvent packets through ingest and lightcurve on the real broker and database: every sample's outcome,
aliases, alert photometry, refusals, and the same packet over three intakes."""
import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import yaml

from services.ingest.store import IngestStore
from services.ingest.tokens import new_token
from shared.db import make_client
from shared.messaging import REASON_HEADER
from tests.support.amqp import next_message
from tests.support.system import running_system, settings_for
from tests.support.voevents import sample, synthetic_packet, wait_count
from tests.support.vtp_peer import VtpPeer

pytestmark = pytest.mark.integration
SPEC = Path(__file__).resolve().parents[2] / "services" / "ingest" / "openapi.yaml"

# in this order (the Swift BAT position before its XRT refinement): outcome, event, words in the reason
OUTCOMES = [
    ("Gaia16aac.xml", "created", "ivo://Gaia16aac", "new event"),
    ("ASASSN_2016-09-25.47_2016fvf_PTSS-16nqb_PS16ejf.xml", "created",
     "ivo://voevent.4pisky.org/ASASSN#2016-09-25.47_2016fvf_PTSS-16nqb_PS16ejf", "16 arcsec"),
    ("BAT_GRB_Pos_655721-214.xml", "recorded_without_target", "ivo://SWIFT_655721", "3 arcmin"),
    ("XRT_Pos_655721-326.xml", "updated", "ivo://SWIFT_655721", "refined"),
    ("SWIFT_bat_position_v2.0_example.xml", "recorded_without_target", "ivo://SWIFT_532871", "3 arcmin"),
    ("SWIFT_xrt_position_v1.1_example.xml", "created", "ivo://SWIFT_644259", "3.24 arcsec"),
    ("fermi_gbm_flt_pos.xml", "recorded_without_target", "ivo://Fermi_336801278", "17.43 deg"),
    ("Konus_Lightcurve_2015-07-10T00:28:01.68.xml", "recorded_without_target", "ivo://KONUS_1721301681",
     "RA=0, Dec=0"),
    ("MOA_Lensing_Event_2015-07-10T14_50_54.00.xml", "created", "ivo://MOA_201500354", "not given"),
    ("LVC_S200302c-1-Preliminary.xml", "recorded_without_target", "ivo://S200302c", "no position"),
    ("no_namespace_packet.xml", "ignored", None, "role 'test' is not taken"),
]


@pytest.fixture
async def start_system(mongo_url, amqp_url, unique_name, monkeypatch):
    """Starts ingest and lightcurve in this process (CPCS_VOEVENT_* from the keywords) and
    gives an admin token for posting packets."""
    async with AsyncExitStack() as stack:
        async def start(**voevent_env):
            for key, value in voevent_env.items():
                monkeypatch.setenv(f"CPCS_VOEVENT_{key.upper()}", str(value))
            settings = settings_for(mongo_url, amqp_url, unique_name)
            system = await stack.enter_async_context(running_system(settings, services=("ingest", "lightcurve")))
            client = make_client(mongo_url)
            stack.push_async_callback(client.close)
            system.db = client[unique_name]
            system.admin = new_token("FeedAdmin")
            await IngestStore(system.db).add_token(system.admin, observatory_id=None, user="feed", is_admin=True,
                                                   allow_upload=False)
            return system

        yield start


@pytest.fixture
async def system(start_system):
    return await start_system()


async def post(system, data: bytes, token: str | None = None, **headers):
    headers = {"Content-Type": "application/xml", **headers}
    if token is not False:
        headers["Authorization"] = f"Bearer {token or system.admin}"
    async with system.http.post(f"{system.url}/api/v1/voevents", data=data, headers=headers) as response:
        return response.status, await response.json()


def validate(schema: str, instance) -> None:
    """The answer matches its schema in openapi.yaml."""
    jsonschema = pytest.importorskip("jsonschema")
    components = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["components"]
    jsonschema.Draft202012Validator({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                     "$ref": f"#/components/schemas/{schema}", "components": components}
                                    ).validate(instance)


async def get_json(system, path: str, **params):
    async with system.http.get(f"{system.url}{path}", params={"hashtag": system.admin, **params}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_every_sample_packet_has_its_outcome_and_a_second_delivery_is_a_duplicate(system):
    for name, outcome, event, words in OUTCOMES:
        status, answer = await post(system, sample(name))
        assert answer["outcome"] == outcome, (name, answer)
        assert words in answer["reason"], (name, answer["reason"])
        assert status == (201 if outcome in ("created", "recorded_without_target") and name != "XRT_Pos_655721-326.xml"
                          else 200), name
        assert (answer["event"] or {}).get("ivorn") == event, name
        validate("VoeventOutcome", answer)
        if answer["event"]:
            assert answer["event"]["target_usable"] == (outcome in ("created", "updated")), name
    for name, outcome, _event, _ in OUTCOMES:
        status, answer = await post(system, sample(name))
        assert (status, answer["outcome"]) == (200, "ignored" if outcome == "ignored" else "duplicate"), name
    assert await system.db.events.count_documents({}) == 9
    swift = await system.db.events.find_one({"_id": "ivo://SWIFT_655721"})
    assert [e["error_radius_deg"] for e in swift["history"]] == [0.05, 0.001]
    assert (swift["ra_deg"], swift["dec_deg"], swift["target_usable"]) == (319.6588, -34.9131, True)
    processed = await wait_count(system.probe, "voevent.processed.v1", 2 * len(OUTCOMES))
    assert {m.via for m in processed} == {"http"}
    # the lightcurve service keeps its own copy of each event, the refined one for Swift
    await system.probe.wait_for("lightcurve.event.stored.v1",
                                lambda m: m.event_ivorn == "ivo://SWIFT_655721" and m.revision == 2)
    await wait_count(system.probe, "lightcurve.event.stored.v1", 10)  # 9 events created, 1 updated
    curve = await get_json(system, "/api/v1/events/ivo%3A%2F%2FSWIFT_655721/lightcurve")
    assert (curve["event"]["ra"], curve["event"]["dec"], curve["event"]["target_usable"]) == (319.6588, -34.9131, True)
    assert curve["event"]["error_radius_deg"] == 0.001 and curve["event"]["n_packets"] == 2
    assert curve["id"] == swift["alert_id"] and set(curve["event"]["aliases"]) == set(swift["aliases"])
    listed = await get_json(system, "/list_of_alerts", format="json")
    ingest_events = await system.db.events.find({}).sort("alert_id", -1).to_list(None)
    assert [(r["id"], r["ivorn"], r["ra"], r["dec"], r["published"]) for r in listed] == [
        (e["alert_id"], e["_id"], e["ra_deg"], e["dec_deg"], e["published"].isoformat()) for e in ingest_events]


async def test_aliases_find_the_event_and_the_alert_magnitude_is_on_its_light_curve(system):
    await post(system, sample("Gaia16aac.xml"))
    stored = await system.probe.wait_for("alert.photometry.stored.v1", lambda m: m.event_ivorn == "ivo://Gaia16aac")
    assert len(stored.point_ids) == 1
    await system.probe.wait_for("lightcurve.event.stored.v1", lambda m: m.event_ivorn == "ivo://Gaia16aac")
    for name in ("ivo://Gaia16aac", "ivo://gaia.cam.uk/alerts#Gaia16aac", "Gaia16aac"):
        columns = await get_json(system, "/get_alert_lc_data", alert_name=name)
        assert columns["alert_name"] == "ivo://Gaia16aac" and columns["id"] == []  # follow-up points only
    curve = await get_json(system, "/api/v1/events/Gaia16aac/lightcurve")
    validate("Lightcurve", curve)
    [point] = curve["points"]
    assert (point["kind"], point["survey"], point["filter"], point["mag"], point["mag_err"]) == \
        ("alert", "Gaia", "G", 17.32, 0.05)
    assert point["mjd"] == pytest.approx(57403.327, abs=0.001)
    assert curve["event"]["target_usable"] and "Gaia16aac" in curve["event"]["aliases"]
    async with system.http.get(f"{system.url}/api/v1/events/ivo%3A%2F%2FGaia16aac/lightcurve",
                               params={"format": "csv", "hashtag": system.admin}) as response:
        lines = (await response.text()).splitlines()
    assert lines[0].endswith(",kind") and lines[1].endswith(",alert") and len(lines) == 2
    async with system.http.get(f"{system.url}/get_alert_lc", params={"alert_name": "Gaia16aac"}) as response:
        assert response.status == 200 and "Gaia" in await response.text()


async def test_uploads_for_an_event_without_a_usable_target_are_refused_with_the_reason(system):
    await post(system, sample("fermi_gbm_flt_pos.xml"))
    token = new_token("Observer")
    store = IngestStore(system.db)
    observatory = await store.create_observatory("Feed Test 0.5 m", 10.0, 50.0)
    await store.add_token(token, observatory_id=observatory["_id"], user="Observer")
    async with system.http.post(f"{system.url}/cgi/upload", data={
            "EventID": "ivo://Fermi_336801278", "hashtag": token, "MJD": "55808.2", "sexCat": "x"}) as response:
        assert response.status == 422
        assert "no position usable for photometry" in (body := await response.text()) and "17.43 deg" in body


async def test_refusals_say_why(system):
    store = IngestStore(system.db)
    observatory = await store.create_observatory("Feed Test 1 m", 10.0, 50.0)
    observer = new_token("Observer")
    await store.add_token(observer, observatory_id=observatory["_id"], user="Observer")
    for data, token, status, words in [
        (sample("Gaia16aac.xml"), False, 401, "token"),
        (sample("Gaia16aac.xml"), observer, 403, "may not post VOEvents"),
        (b"<html>not a packet</html>", None, 400, "not a <VOEvent>"),
        (b"\x89PNG\r\n", None, 400, "not well-formed XML"),
        (b"<VOEvent/>" + b" " * 600_000, None, 413, "limit"),
    ]:
        got, answer = await post(system, data, token)
        assert (got, answer["status"]) == (status, status) and words in answer["error"], (status, answer)
    await system.broker.publish_bytes("voevent.received.v1", b"<VOEvent role='observation'/>")
    dead = await next_message(system.broker, system.broker.dead_letter_queue, timeout_s=30)
    assert "no usable ivorn" in dead.headers[REASON_HEADER]
    assert dead.headers["x-cpcs-queue"] == f"{system.settings.exchange}.ingest.intake"


async def test_test_packets_are_taken_when_configured(start_system):
    system = await start_system(roles="observation,test")
    status, answer = await post(system, sample("no_namespace_packet.xml"))
    assert (status, answer["outcome"]) == (201, "recorded_without_target")
    assert "RA=0, Dec=0" in answer["reason"] and answer["event"]["role"] == "test"


async def test_same_packet_100_times_over_each_of_three_intakes_makes_one_event(start_system):
    peer = VtpPeer()
    await peer.start()
    try:
        system = await start_system(vtp_remotes=f"127.0.0.1:{peer.port}", vtp_backoff_max_s=0.5)
        await system.probe.wait_for("voevent.feed.changed.v1", lambda m: m.state == "connected")
        packet, ivorn = sample("Gaia16aac.xml"), "ivo://gaia.cam.uk/alerts#Gaia16aac"
        http = asyncio.gather(*(post(system, packet) for _ in range(100)))
        amqp = asyncio.gather(*(system.broker.publish_bytes("voevent.received.v1", packet) for _ in range(100)))
        for _ in range(100):
            await peer.send(packet)
        answers, _ = await asyncio.gather(http, amqp)
        processed = await wait_count(system.probe, "voevent.processed.v1", 300, lambda m: m.packet_ivorn == ivorn,
                                     timeout_s=60)
        told = [await peer.next_answer() for _ in range(101)]  # authenticate, then an ack per packet
        assert [(a.role, a.origin) for a in told].count(("ack", ivorn)) == 100
    finally:
        await peer.stop()
    assert [m.via for m in processed].count("vtp") == 100
    assert {m.via for m in processed} == {"http", "amqp", "vtp"}
    assert [m.outcome for m in processed].count("created") == 1
    assert {m.outcome for m in processed} == {"created", "duplicate"}
    assert {status for status, _ in answers} <= {200, 201}
    assert system.probe.count("event.created.v1", lambda m: m.ivorn == "ivo://Gaia16aac") == 1
    assert await system.db.events.count_documents({}) == 1
    event = await system.db.events.find_one({"_id": "ivo://Gaia16aac"})
    assert len(event["history"]) == 1
    await system.probe.wait_for("alert.photometry.stored.v1")
    assert await system.db.alert_points.count_documents({}) == 1


async def test_burst_of_1000_distinct_packets_is_absorbed_without_loss(system):
    loop = asyncio.get_running_loop()
    start = loop.time()
    for chunk in range(0, 1000, 100):
        await asyncio.gather(*(system.broker.publish_bytes("voevent.received.v1", synthetic_packet(n))
                               for n in range(chunk, chunk + 100)))
    processed = await wait_count(system.probe, "voevent.processed.v1", 1000, timeout_s=120)
    elapsed = loop.time() - start
    assert {m.outcome for m in processed} == {"created"}
    assert len({m.packet_ivorn for m in processed}) == 1000
    assert await system.db.events.count_documents({}) == 1000
    print(f"\n1000 packets over AMQP absorbed in {elapsed:.1f} s ({1000 / elapsed:.0f} packets/s)")
