"""Ingest's use cases over a fake of its own store port: each refusal is the domain error with the
observer's sentence, and what succeeds is stored and announced."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.cpcs_fields import request_from_fields
from services.ingest.errors import Forbidden, InvalidInput, NotAuthenticated, NotFound, Refused, TooLarge
from services.ingest.usecases.access import authenticate, require_admin, require_voevent_poster
from services.ingest.usecases.events import checked_event, create_event
from services.ingest.usecases.observations import delete_observation, find_observation
from services.ingest.usecases.observatories import create_observatory, observatory_rows
from services.ingest.usecases.recalibrations import check_overrides, selection_from
from services.ingest.usecases.uploads import UploadRequest, Uploads
from shared.contracts import EventCreatedV1, ObservationDeletedV1


class FakeStore:
    """The part of IngestStore the use cases call, in memory."""

    def __init__(self):
        self.tokens: dict[str, dict] = {}
        self.events: dict[str, dict] = {}
        self.observatories: dict[int, dict] = {}
        self.observations: dict[str, dict] = {}
        self.released: list[str] = []
        self.deleted_bytes: list[str] = []

    async def find_token(self, token):
        return self.tokens.get(token) if token else None

    async def add_token(self, token, *, observatory_id, user, is_admin=False, allow_upload=True,
                        allow_voevents=False):
        self.tokens[token] = {"observatory_id": observatory_id, "user": user, "is_admin": is_admin,
                              "allow_upload": allow_upload, "allow_voevents": allow_voevents}

    async def find_event(self, ivorn):
        return self.events.get(ivorn)

    async def create_event(self, ivorn, ra_deg, dec_deg, url, source):
        if ivorn in self.events:
            return self.events[ivorn], False
        doc = {"_id": ivorn, "alert_id": len(self.events) + 1, "ra_deg": ra_deg, "dec_deg": dec_deg, "url": url,
               "source": source, "published": datetime(2026, 1, 1, tzinfo=UTC), "target_usable": True}
        self.events[ivorn] = doc
        return doc, True

    async def create_observatory(self, name, lon_deg, lat_deg):
        doc = {"_id": len(self.observatories) + 1, "name": name, "lon_deg": lon_deg, "lat_deg": lat_deg}
        self.observatories[doc["_id"]] = doc
        return doc

    async def get_observatory(self, observatory_id):
        return self.observatories.get(observatory_id)

    async def list_observatories(self):
        return list(self.observatories.values())

    async def count_observations(self, observatory_id):
        return sum(o["observatory_id"] == observatory_id for o in self.observations.values())

    async def find_observation(self, observation_id):
        return self.observations.get(observation_id)

    async def find_observation_by_followup(self, followup_id):
        return next((o for o in self.observations.values() if o["followup_id"] == followup_id), None)

    async def delete_observation(self, observation_id):
        self.observations.pop(observation_id, None)

    async def release_upload(self, observation_id):
        self.released.append(observation_id)

    async def delete_bytes(self, file_id, *, scratch=False):
        self.deleted_bytes.append(file_id)


class Published(list):
    async def __call__(self, message, correlation_id=None):
        self.append(message)


@pytest.fixture
def store():
    store = FakeStore()
    store.observatories[1] = {"_id": 1, "name": "Demo 0.6 m", "lon_deg": 20.0, "lat_deg": 50.0}
    store.tokens["obs"] = {"observatory_id": 1, "user": "obs", "allow_upload": True}
    store.tokens["other"] = {"observatory_id": 2, "user": "other", "allow_upload": True}
    store.tokens["admin"] = {"observatory_id": None, "user": "admin", "is_admin": True}
    store.tokens["feed"] = {"observatory_id": None, "user": "feed", "allow_voevents": True, "allow_upload": False}
    store.observations["abc"] = {"_id": "abc", "followup_id": 7, "observatory_id": 1,
                                 "event_ivorn": "ivo://Gaia16aye", "file_id": "f1"}
    return store


async def test_an_unknown_token_is_not_authenticated_with_the_adapters_sentence(store):
    assert (await authenticate(store, "obs"))["user"] == "obs"
    with pytest.raises(NotAuthenticated, match="^unknown or missing hashtag$"):
        await authenticate(store, "nope", unknown="unknown or missing hashtag")
    with pytest.raises(NotAuthenticated, match="^unknown or missing token$"):
        await authenticate(store, "")


async def test_admin_and_voevent_rights(store):
    assert require_admin(store.tokens["admin"], "admins only")["user"] == "admin"
    with pytest.raises(Forbidden, match="admins only"):
        require_admin(store.tokens["obs"], "admins only")
    assert require_voevent_poster(store.tokens["feed"])["user"] == "feed"
    assert require_voevent_poster(store.tokens["admin"])["user"] == "admin"
    with pytest.raises(Forbidden, match="may not post VOEvents"):
        require_voevent_poster(store.tokens["obs"])


@pytest.mark.parametrize(("ivorn", "ra", "dec", "reason"), [
    ("Gaia16aye", "10", "20", "must be an IVORN"),
    ("ivo://Gaia16aye", "ten", "20", "ra must be in decimal degrees"),
    ("ivo://Gaia16aye", "10", "91", "dec must be between -90 and 90"),
    ("ivo://Gaia16aye", "0", "0", "not a usable position"),
])
def test_a_malformed_event_is_invalid_input(ivorn, ra, dec, reason):
    with pytest.raises(InvalidInput, match=reason):
        checked_event(ivorn, ra, dec)


async def test_a_new_event_is_stored_and_announced_once(store):
    published = Published()
    event, created = await create_event(store, published, ivorn=" ivo://Gaia16aye ", ra="360", dec="-10.5",
                                        url="", source="manual")
    assert created and event["_id"] == "ivo://Gaia16aye" and event["ra_deg"] == 0.0
    again, created_again = await create_event(store, published, ivorn="ivo://Gaia16aye", ra="10", dec="-10.5",
                                              url="", source="api")
    assert not created_again and again is event
    assert [type(m) for m in published] == [EventCreatedV1] and published[0].ivorn == "ivo://Gaia16aye"


async def test_an_observation_is_found_by_id_or_followup_id(store):
    assert (await find_observation(store, "7"))["_id"] == "abc"
    assert (await find_observation(store, "abc"))["followup_id"] == 7
    with pytest.raises(NotFound, match="there is no observation 8"):
        await find_observation(store, "8")


async def test_only_the_owner_or_an_admin_deletes_a_point(store):
    published = Published()
    with pytest.raises(NotFound, match="there is no point 99"):
        await delete_observation(store, published, store.tokens["obs"], followup_id=99)
    with pytest.raises(Forbidden, match="only the observatory that uploaded a point"):
        await delete_observation(store, published, store.tokens["other"], followup_id=7)
    assert published == [] and "abc" in store.observations
    deleted = await delete_observation(store, published, store.tokens["obs"], followup_id=7)
    assert deleted["_id"] == "abc" and store.observations == {}
    assert store.released == ["abc"] and store.deleted_bytes == ["f1"]
    assert [type(m) for m in published] == [ObservationDeletedV1] and published[0].deleted_by == "obs"


async def test_a_new_observatory_gets_a_token_and_is_listed(store):
    with pytest.raises(InvalidInput, match="obsName is missing"):
        await create_observatory(store, name="  ")
    with pytest.raises(InvalidInput, match="lat must be between -90 and 90"):
        await create_observatory(store, name="Hill", lat="95")
    user = await create_observatory(store, name=" Hill ", lon="15.5", lat="", prefix="hill", allow_voevents=True)
    assert user.observatory["name"] == "Hill" and user.observatory["lat_deg"] is None
    assert user.token.startswith("hill_") and store.tokens[user.token]["allow_voevents"] is True
    rows = await observatory_rows(store)
    assert rows[0] == {"id": 1, "name": "Demo 0.6 m", "longitude": 20.0, "latitude": 50.0, "observations": 1}
    assert rows[1]["name"] == "Hill" and rows[1]["observations"] == 0


def test_a_recalibration_needs_a_selection_and_known_parameters():
    with pytest.raises(InvalidInput, match="choose the points"):
        selection_from({})
    with pytest.raises(InvalidInput, match="the selection is malformed"):
        selection_from({"followup_ids": ["x"]})
    assert selection_from({"event": "ivo://Gaia16aye"}).event_ivorn == "ivo://Gaia16aye"
    with pytest.raises(InvalidInput):
        check_overrides({"no_such_parameter": 1})
    assert check_overrides({}) == {}


def test_malformed_cpcs_fields_are_invalid_input():
    with pytest.raises(InvalidInput, match="EventID is missing"):
        request_from_fields({}, b"x", "cat", "obs")
    with pytest.raises(InvalidInput, match="MJD must be a number"):
        request_from_fields({"EventID": "ivo://Gaia16aye", "MJD": "soon"}, b"x", "cat", "obs")
    with pytest.raises(InvalidInput, match="matchDist must be at most 60"):
        request_from_fields({"EventID": "ivo://Gaia16aye", "matchDist": "61"}, b"x", "cat", "obs")
    req = request_from_fields({"EventID": "ivo://Gaia16aye", "dryRun": "1", "MJD": "60000.5"}, b"x", "", "obs")
    assert req.dry_run and req.mjd == 60000.5 and req.filename == "catalogue"


async def test_an_upload_is_refused_before_anything_is_read_or_stored(store):
    published = Published()
    store.events["ivo://Gaia16aye"] = {"_id": "ivo://Gaia16aye", "ra_deg": 10.0, "dec_deg": 20.0}
    store.events["ivo://Nowhere"] = {"_id": "ivo://Nowhere", "target_usable": False,
                                     "no_target_reason": "error circle 2 deg"}
    uploads = Uploads(store, published, max_bytes=10)

    def req(**kw):
        return UploadRequest(**({"data": b"1 2 3", "filename": "c", "event_ivorn": "ivo://Gaia16aye",
                                 "token": "obs"} | kw))

    cases = [(req(token="nope"), NotAuthenticated, "unknown or missing hashtag"),
             (req(token="feed"), Forbidden, "not allowed to upload"),
             (req(token="admin"), Forbidden, "not allowed to upload"),
             (req(token="other"), Forbidden, "no longer exists"),
             (req(event_ivorn="ivo://Gaia99zz"), NotFound, "unknown event ivo://Gaia99zz"),
             (req(event_ivorn="ivo://Nowhere"), Refused, "error circle 2 deg"),
             (req(data=b""), InvalidInput, "no catalogue file was attached"),
             (req(data=b"x" * 11), TooLarge, "the limit is")]
    for request, kind, reason in cases:
        with pytest.raises(kind, match=reason):
            await uploads.accept(request)
    assert published == []


async def test_a_known_tokens_observatory_is_read_once_and_again_after_its_keep(store, monkeypatch):
    from services.ingest.usecases import uploads as uploads_module
    reads: list[str] = []
    find_token, get_observatory = store.find_token, store.get_observatory

    async def counted_token(token):
        reads.append("token")
        return await find_token(token)

    async def counted_observatory(observatory_id):
        reads.append("observatory")
        return await get_observatory(observatory_id)

    monkeypatch.setattr(store, "find_token", counted_token)
    monkeypatch.setattr(store, "get_observatory", counted_observatory)
    uploads = Uploads(store, Published(), max_bytes=10)
    assert (await uploads._authorise("obs"))["name"] == "Demo 0.6 m"
    assert (await uploads._authorise("obs"))["name"] == "Demo 0.6 m"
    assert reads == ["token", "observatory"]  # the second upload read neither
    with pytest.raises(NotAuthenticated):  # an unknown token is not remembered: added later, it works
        await uploads._authorise("late")
    store.tokens["late"] = {"observatory_id": 1, "user": "late", "allow_upload": True}
    assert (await uploads._authorise("late"))["_id"] == 1
    monkeypatch.setattr(uploads_module, "IDENTITY_KEEP_S", 0.0)  # kept no longer: read again
    del store.tokens["obs"]
    with pytest.raises(NotAuthenticated):
        await uploads._authorise("obs")
    monkeypatch.setattr(uploads_module, "IDENTITY_MAX", 1)
    uploads._identities.clear()
    for token in ("late", "obs2"):
        store.tokens["obs2"] = {"observatory_id": 1, "user": "obs2", "allow_upload": True}
        await uploads._authorise(token)
    assert list(uploads._identities) == [uploads_module.token_hash("obs2")]  # the oldest went first
