"""Calibration's message handlers (uploads, measured catalogues, recalibrations, deletions, plots) with
fakes of their ports: the store, the reference cone and the process pools. The science runs for real
on a small seeded field (tens of milliseconds); the pool fake runs it inline and records each call."""
from __future__ import annotations

import copy
import json
from concurrent.futures import Executor, Future
from pathlib import Path

import numpy as np
import pytest

from services.calibration.handlers import CalibrationDeps, Calibrator, Plotter, forced_limit_err_mag
from services.calibration.recalibration import Recalibrator
from shared.contracts import (
    CatalogueMeasuredV1,
    ObservationCalibratedV1,
    ObservationDeletedV1,
    ObservationFailedV1,
    PlotDeclinedV1,
    PlotRenderedV1,
    PlotRequestedV1,
    RecalibrationDoneV1,
    RecalibrationRequestedV1,
    UploadReceivedV1,
)
from shared.errors import TransientError
from shared.refcat.model import ReferenceStars
from shared.refcat.query import QueryResult, SurveyCoverage
from shared.simfield import APASS_COLUMNS, simulate_field

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"
RA_DEG, DEC_DEG = 295.00479, 30.13148  # the samples' event
UPLOAD_ID, CATALOGUE_ID = "6550a1b2c3d4e5f601234567", "6550a1b2c3d4e5f601234599"
TARGET_MAG = 17.0


def _field(*, target_mag: float | None, seed: int):
    return simulate_field(ra_deg=RA_DEG, dec_deg=DEC_DEG, radius_arcmin=6, n_stars=150, seed=seed,
                          target_mag=target_mag)


DETECTED, NOT_DETECTED = _field(target_mag=TARGET_MAG, seed=7), _field(target_mag=None, seed=8)


def reference_stars(field) -> ReferenceStars:
    ref = field.reference
    mags = {b: np.asarray(ref[c].filled(np.nan), float) for b, c in APASS_COLUMNS.items()}
    errs = {b: np.asarray(ref[f"e_{c}"].filled(np.nan), float) for b, c in APASS_COLUMNS.items()}
    return ReferenceStars("APASS", "DR9", np.asarray(ref["RAJ2000"], float), np.asarray(ref["DEJ2000"], float),
                          mags, errs)


def sample(key: str, **changes):
    from shared.contracts import REGISTRY

    return REGISTRY[key].model_validate(json.loads((SAMPLES / f"{key}.json").read_text()) | changes)


# ----------------------------------------------------------------------------------------- fakes


class FakeCalibrationStore:
    """In memory, the methods of ``CalibrationStorage``; documents are copied in and out as a database would."""

    def __init__(self):
        self.bytes: dict[tuple[str, str], bytes] = {}  # (bucket, file_id) -> bytes
        self.catalogues: dict[str, bytes] = {}
        self.calibrations: dict[str, dict] = {}
        self.history: list[dict] = []
        self.attempts: list[dict] = []
        self.plots: dict[str, bytes] = {}
        self.saved, self.purges = [], 0

    async def upload_bytes(self, file_id: str, bucket: str, sha256: str | None = None) -> bytes | None:
        return self.bytes.get((bucket, file_id))

    async def catalogue_bytes(self, file_id: str) -> bytes | None:
        return self.catalogues.get(file_id)

    async def find(self, observation_id: str) -> dict | None:
        return copy.deepcopy(self.calibrations.get(observation_id))

    async def find_with_stars(self, observation_id: str) -> dict | None:
        return await self.find(observation_id)

    async def save(self, doc: dict, *, dry_run: bool, first: bool = False) -> None:
        self.saved.append(doc["_id"])
        self.calibrations[doc["_id"]] = copy.deepcopy(doc) | {"expires": dry_run}

    async def delete(self, observation_id: str) -> None:
        self.calibrations.pop(observation_id, None)
        self.plots.pop(observation_id, None)
        self.history = [h for h in self.history if h["observation_id"] != observation_id]

    async def purge_expired_dry_runs(self) -> int:
        self.purges += 1
        return 0

    async def replace_current(self, doc: dict, *, reason: str) -> None:
        previous = self.calibrations.get(doc["_id"])
        if previous is not None:
            self.history.append(copy.deepcopy(previous) | {"observation_id": doc["_id"], "replaced_because": reason})
        self.calibrations[doc["_id"]] = copy.deepcopy(doc)
        self.plots.pop(doc["_id"], None)

    async def record_attempt(self, observation_id: str, recalibration_id: str, result: dict) -> None:
        self.attempts.append({"observation_id": observation_id, "recalibration_id": recalibration_id,
                              "result": copy.deepcopy(result)})

    async def has_plot(self, observation_id: str) -> bool:
        return observation_id in self.plots

    async def save_plot(self, observation_id: str, png: bytes) -> None:
        self.plots[observation_id] = png


class FakeReferenceCone:
    """The reference stars of one field; ``down`` makes it fail as an unreachable store does."""

    def __init__(self, stars: list[ReferenceStars]):
        self.stars, self.down, self.calls = stars, False, []

    async def cone(self, ra_deg, dec_deg, radius_deg, *, epoch_jyear=None) -> QueryResult:
        self.calls.append((ra_deg, dec_deg, radius_deg, epoch_jyear))
        if self.down:
            raise ConnectionError("server selection timed out")
        status = "covered" if self.stars else "outside"
        return QueryResult(stars=self.stars,
                           coverage={"APASS": SurveyCoverage("APASS", status, float(bool(self.stars)))})


class RecordingPool(Executor):
    """Runs each submitted step inline and records it (name and keyword arguments); ``replace`` maps
    a step's name to a stand-in (e.g. the plot, whose drawing is slow and not under test here)."""

    def __init__(self, replace: dict | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.replace = replace or {}

    def submit(self, fn, /, *args, **kwargs):
        name = fn.func.__name__
        self.calls.append((name, dict(fn.keywords)))
        future: Future = Future()
        try:
            future.set_result(self.replace[name](*fn.args, **fn.keywords) if name in self.replace else fn())
        except Exception as exc:
            future.set_exception(exc)
        return future

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class Service:
    """The calibration handlers wired to fakes, as the composition root wires them to the real ports."""

    def __init__(self, field=DETECTED):
        self.store = FakeCalibrationStore()
        self.refcat = FakeReferenceCone([reference_stars(field)])
        self.pool = RecordingPool()
        self.plot_pool = RecordingPool(replace={"draw_plot": lambda result, title: b"\x89PNG " + title.encode()})
        deps = CalibrationDeps(store=self.store, refcat=self.refcat, executor=self.pool, plot_executor=self.plot_pool)
        self.calibrator, self.plotter = Calibrator(deps), Plotter(deps)
        self.recalibrator = Recalibrator(self.calibrator)
        self.store.bytes[("uploads", UPLOAD_ID)] = field.catalogue_text.encode()


def upload(**changes) -> UploadReceivedV1:
    """An upload that does not show its plot (the plot's request is tested on its own)."""
    return sample("upload.received.v1", **{"file_id": UPLOAD_ID, "no_plot": True} | changes)


def recalibration(**changes) -> RecalibrationRequestedV1:
    return sample("recalibration.requested.v1", **{"file_id": UPLOAD_ID, "param_overrides": {}} | changes)


FORCED_NOT_DETECTED = {"ra_deg": RA_DEG, "dec_deg": DEC_DEG, "x_px": 511.5, "y_px": 511.5, "in_frame": True,
                       "flux_adu": 12.0, "flux_err_adu": 40.0, "snr": 0.3, "detected": False, "mag_inst": None,
                       "mag_err": None, "limit_sigma": 5.0, "limit_mag_inst": -6.5, "aperture_flux_adu": None,
                       "aperture_flux_err_adu": None, "reason": None}


def measured(**changes) -> CatalogueMeasuredV1:
    raw = json.loads((SAMPLES / "catalogue.measured.v1.json").read_text())
    raw |= {"filename": "frame.cat", "catalogue_file_id": CATALOGUE_ID, "match_radius_arcsec": None, "no_plot": True,
            "target": FORCED_NOT_DETECTED,
            "image_metadata": {"fwhm_arcsec": 1.25, "target_clear_radius_arcsec": 1.5}} | changes
    return CatalogueMeasuredV1.model_validate(raw)


# ------------------------------------------------------------------------------- upload.received.v1


async def test_an_upload_is_calibrated_stored_once_and_answered_with_its_input():
    service = Service()
    [answer] = await service.calibrator.on_upload_received(upload())
    assert isinstance(answer, ObservationCalibratedV1)
    assert answer.result.status == "calibrated" and answer.result.mag == pytest.approx(TARGET_MAG, abs=0.1)
    assert (answer.file_id, answer.bucket, answer.followup_id) == (UPLOAD_ID, "uploads", 42)
    assert answer.refcat_versions == {"APASS": "DR9"}
    assert service.pool.names() == ["read_stars", "run_calibration"]
    doc = service.store.calibrations[answer.observation_id]
    assert doc["outcome"] == "observation.calibrated.v1" and doc["result"]["status"] == "calibrated"
    assert doc["expires"] is False and service.store.purges == 0
    [(_, _, _, epoch_jyear)] = service.refcat.calls
    assert epoch_jyear == pytest.approx(2016.6, abs=0.1)  # the observation's MJD as a Julian year


def field_of_stars(field=DETECTED) -> dict:
    from shared.catalogue import read_catalogue
    from shared.footprint import enclosing_circle

    stars = read_catalogue(field.catalogue_text.encode(), filename="test.cat")
    return dict(zip(("ra_deg", "dec_deg", "radius_deg"), enclosing_circle(stars.ra_deg, stars.dec_deg), strict=True))


async def test_an_upload_naming_its_field_is_read_and_calibrated_in_one_trip_with_the_same_result():
    two_trips, one_trip = Service(), Service()
    [before] = await two_trips.calibrator.on_upload_received(upload())
    [after] = await one_trip.calibrator.on_upload_received(upload(field=field_of_stars()))
    assert one_trip.pool.names() == ["read_and_calibrate"]  # the references were fetched while it read
    assert one_trip.refcat.calls == two_trips.refcat.calls  # the same cone
    assert after.result == before.result and after.result.n_catalogue_stars == before.result.n_catalogue_stars
    first = two_trips.store.calibrations[before.observation_id]["result"]
    assert one_trip.store.calibrations[after.observation_id]["result"] == first


async def test_an_upload_whose_stars_lie_outside_the_field_it_names_is_calibrated_with_their_own_field():
    named = field_of_stars()
    service = Service()
    [answer] = await service.calibrator.on_upload_received(upload(field=named | {"ra_deg": named["ra_deg"] + 1.0}))
    assert service.pool.names() == ["read_and_calibrate", "read_stars", "run_calibration"]
    [(wrong_ra, *_), (ra, dec, *_)] = service.refcat.calls
    assert wrong_ra == pytest.approx(named["ra_deg"] + 1.0)
    assert (ra, dec) == pytest.approx((named["ra_deg"], named["dec_deg"]))
    assert answer.result.status == "calibrated" and answer.result.mag == pytest.approx(TARGET_MAG, abs=0.1)


async def test_an_unreadable_upload_naming_a_field_fails_with_the_reader_s_reason():
    service = Service()
    service.store.bytes[("uploads", UPLOAD_ID)] = b"not a catalogue at all\n"
    [failed] = await service.calibrator.on_upload_received(upload(field=field_of_stars()))
    assert isinstance(failed, ObservationFailedV1) and failed.stage == "calibration" and failed.reason
    assert service.pool.names() == ["read_and_calibrate"]


async def test_the_upload_delivered_again_gets_the_stored_answer_without_computing_again():
    service = Service()
    [first] = await service.calibrator.on_upload_received(upload())
    del service.store.bytes[("uploads", UPLOAD_ID)]  # not needed: the stored answer is enough
    [again] = await service.calibrator.on_upload_received(upload())
    assert again == first  # the very message (same message id), not a new computation
    assert service.pool.names() == ["read_stars", "run_calibration"] and len(service.refcat.calls) == 1
    assert service.store.saved == [first.observation_id]


async def test_a_dry_run_is_stored_to_expire_and_names_its_scratch_copy():
    service = Service()
    service.store.bytes[("scratch", UPLOAD_ID)] = service.store.bytes.pop(("uploads", UPLOAD_ID))
    [answer] = await service.calibrator.on_upload_received(upload(dry_run=True, followup_id=None, bucket="scratch"))
    assert isinstance(answer, ObservationCalibratedV1) and answer.dry_run
    assert (answer.file_id, answer.bucket) == (UPLOAD_ID, "scratch")
    assert service.store.calibrations[answer.observation_id]["expires"] is True and service.store.purges == 1


async def test_the_observatory_filters_of_an_upload_reach_the_science():
    service = Service()
    await service.calibrator.on_upload_received(upload(observatory_filters=["r", "i"]))
    [kwargs] = [kw for name, kw in service.pool.calls if name == "run_calibration"]
    assert kwargs["observatory_filters"] == ["r", "i"] and kwargs["declared_filter"] == "r"


async def test_bytes_deleted_before_calibration_leave_nothing_to_do():
    service = Service()
    service.store.bytes.clear()
    assert await service.calibrator.on_upload_received(upload()) == []
    assert service.store.calibrations == {} and service.pool.calls == [] and service.refcat.calls == []


async def test_an_unreadable_catalogue_is_a_stored_failure_with_the_reason_not_an_exception():
    service = Service()
    service.store.bytes[("uploads", UPLOAD_ID)] = b"\x00\x01 this is no catalogue"
    [answer] = await service.calibrator.on_upload_received(upload())
    assert isinstance(answer, ObservationFailedV1) and answer.stage == "calibration" and answer.reason
    assert (answer.file_id, answer.bucket) == (UPLOAD_ID, "uploads")
    assert service.refcat.calls == []  # refused before the references are asked for
    assert service.store.calibrations[answer.observation_id]["outcome"] == "observation.failed.v1"
    [again] = await service.calibrator.on_upload_received(upload())  # a failure is answered again, too
    assert again == answer and service.pool.names() == ["read_stars"]


async def test_an_unreachable_reference_store_is_transient_and_stores_nothing():
    service = Service()
    service.refcat.down = True
    with pytest.raises(TransientError, match="reference catalogue store unavailable"):
        await service.calibrator.on_upload_received(upload())
    assert service.store.calibrations == {}
    service.refcat.down = False  # the retry, once the store is back, calibrates
    [answer] = await service.calibrator.on_upload_received(upload())
    assert isinstance(answer, ObservationCalibratedV1) and service.store.saved == [answer.observation_id]


async def test_a_field_no_reference_covers_fails_with_a_sentence_for_the_operator():
    service = Service()
    service.refcat.stars = []
    [answer] = await service.calibrator.on_upload_received(upload())
    assert isinstance(answer, ObservationFailedV1)
    assert "no reference catalogue on this server covers the field" in answer.reason
    assert "cpcs refcat import" in answer.reason


# ---------------------------------------------------------------------------- catalogue.measured.v1


async def test_an_image_non_detection_gets_its_limit_and_limit_err_from_the_forced_photometry():
    service = Service(NOT_DETECTED)
    service.store.catalogues[CATALOGUE_ID] = service.store.bytes.pop(("uploads", UPLOAD_ID))
    [answer] = await service.calibrator.on_catalogue_measured(measured())
    assert isinstance(answer, ObservationCalibratedV1) and answer.result.is_limit
    doc = service.store.calibrations[answer.observation_id]
    result = doc["result"]
    assert answer.result.mag == pytest.approx(FORCED_NOT_DETECTED["limit_mag_inst"] - result["zeropoint"])
    assert result["limit_method"] == "forced photometry at the event (local noise)"
    assert answer.result.limit_err is not None
    assert answer.result.limit_err == pytest.approx(forced_limit_err_mag(result))
    assert answer.result.match_radius_arcsec == 1.5  # another star is 1.5 arcsec from the event
    assert doc["catalogue_file_id"] == CATALOGUE_ID and doc["forced_target"] == FORCED_NOT_DETECTED
    assert doc["match_radius_arcsec"] == 1.5


async def test_a_measured_catalogue_delivered_again_is_answered_from_the_store():
    service = Service(NOT_DETECTED)
    service.store.catalogues[CATALOGUE_ID] = service.store.bytes.pop(("uploads", UPLOAD_ID))
    [first] = await service.calibrator.on_catalogue_measured(measured())
    [again] = await service.calibrator.on_catalogue_measured(measured())
    assert again == first and service.pool.names().count("run_calibration") == 1
    assert service.store.saved == [first.observation_id]


async def test_a_measured_catalogue_that_is_gone_leaves_nothing_to_do():
    service = Service(NOT_DETECTED)
    assert await service.calibrator.on_catalogue_measured(measured()) == []
    assert service.store.calibrations == {} and service.pool.calls == []


# ------------------------------------------------------------------------ recalibration.requested.v1


async def test_a_recalibration_replays_the_uploads_observatory_filters():
    service = Service()
    await service.calibrator.on_upload_received(upload(observatory_filters=["r"]))
    await service.recalibrator.on_recalibration_requested(recalibration(observatory_filters=["r"]))
    runs = [kw for name, kw in service.pool.calls if name == "run_calibration"]
    assert [kw["observatory_filters"] for kw in runs] == [["r"], ["r"]]


async def test_an_applied_recalibration_replaces_the_current_one_and_keeps_it_in_the_history():
    service = Service()
    [first] = await service.calibrator.on_upload_received(upload())
    overrides = {"max_scatter_mag": 0.3}
    point, done = await service.recalibrator.on_recalibration_requested(
        recalibration(param_overrides=overrides, reason="gates tightened"))
    assert isinstance(point, ObservationCalibratedV1) and isinstance(done, RecalibrationDoneV1)
    assert done.outcome == "applied" and done.before is not None and done.after is not None
    assert point.params_hash == done.params_hash != first.params_hash
    [kwargs] = [kw for name, kw in service.pool.calls if name == "run_calibration"][1:]
    assert kwargs["params"]["max_scatter_mag"] == overrides["max_scatter_mag"]  # applied over the configured set
    current = service.store.calibrations[first.observation_id]
    assert current["recalibration_id"] == done.recalibration_id and current["result"]["params_hash"] == done.params_hash
    [old] = service.store.history
    assert old["message"]["body"]["message_id"] == first.message_id and old["replaced_because"] == "gates tightened"


async def test_a_recalibration_delivered_again_after_it_was_applied_answers_the_same_without_computing():
    service = Service()
    await service.calibrator.on_upload_received(upload())
    first = await service.recalibrator.on_recalibration_requested(recalibration())
    again = await service.recalibrator.on_recalibration_requested(recalibration())
    # the upload's, the first recalibration's
    assert again == first and service.pool.names().count("run_calibration") == 2
    assert len(service.store.history) == 1


async def test_a_dry_run_recalibration_previews_and_stores_nothing():
    service = Service()
    [first] = await service.calibrator.on_upload_received(upload())
    before = copy.deepcopy(service.store.calibrations)
    [done] = await service.recalibrator.on_recalibration_requested(
        recalibration(dry_run=True, param_overrides={"max_scatter_mag": 0.3}))
    assert isinstance(done, RecalibrationDoneV1) and done.outcome == "previewed"
    assert done.before.mag == first.result.mag and done.after.mag == pytest.approx(first.result.mag, abs=0.05)
    assert service.store.calibrations == before and service.store.history == [] and service.store.attempts == []


async def test_unknown_parameter_overrides_fail_the_recalibration_before_any_computation():
    service = Service()
    await service.calibrator.on_upload_received(upload())
    [done] = await service.recalibrator.on_recalibration_requested(recalibration(param_overrides={"no_such": 1}))
    assert done.outcome == "failed" and "no_such" in done.reason
    assert service.pool.names().count("run_calibration") == 1 and service.store.history == []


async def test_a_recalibration_of_a_deleted_point_fails_because_its_upload_is_gone():
    service = Service()
    service.store.bytes.clear()
    [done] = await service.recalibrator.on_recalibration_requested(recalibration())
    assert done.outcome == "failed" and "gone" in done.reason and done.before is None
    assert service.pool.calls == [] and service.store.calibrations == {}


async def test_a_failed_recalibration_keeps_the_current_calibration_and_records_the_attempt():
    service = Service()
    [first] = await service.calibrator.on_upload_received(upload())
    service.refcat.stars = []  # no references any more: the calibration fails
    [done] = await service.recalibrator.on_recalibration_requested(recalibration())
    assert done.outcome == "failed" and "no reference catalogue" in done.reason
    assert service.store.calibrations[first.observation_id]["message"]["body"]["message_id"] == first.message_id
    [attempt] = service.store.attempts
    assert attempt["recalibration_id"] == done.recalibration_id and service.store.history == []


async def test_an_image_recalibration_reads_its_measured_catalogue_and_applies_the_forced_limit_again():
    service = Service(NOT_DETECTED)
    service.store.catalogues[CATALOGUE_ID] = service.store.bytes.pop(("uploads", UPLOAD_ID))
    [first] = await service.calibrator.on_catalogue_measured(measured())
    point, done = await service.recalibrator.on_recalibration_requested(recalibration(match_radius_arcsec=None))
    assert done.outcome == "applied" and point.result.is_limit
    assert point.result.mag == pytest.approx(first.result.mag) and point.result.limit_err == first.result.limit_err
    assert point.result.match_radius_arcsec == 1.5
    current = service.store.calibrations[first.observation_id]
    assert current["catalogue_file_id"] == CATALOGUE_ID and current["forced_target"] == FORCED_NOT_DETECTED


# -------------------------------------------------------------------- deletion and the plot queue


async def test_a_deleted_observation_is_forgotten_and_a_late_upload_of_it_does_nothing():
    service = Service()
    [answer] = await service.calibrator.on_upload_received(upload())
    deleted = sample("observation.deleted.v1", observation_id=answer.observation_id)
    assert isinstance(deleted, ObservationDeletedV1)
    await service.calibrator.on_observation_deleted(deleted)
    await service.calibrator.on_observation_deleted(deleted)  # again: nothing left, no error
    assert service.store.calibrations == {}
    service.store.bytes.clear()  # ingest deleted the upload with the point
    assert await service.calibrator.on_upload_received(upload()) == []


async def test_an_upload_that_shows_its_plot_asks_for_it_with_its_answer_and_one_that_does_not_never():
    service = Service()
    shown = await service.calibrator.on_upload_received(upload(no_plot=False))
    assert [m.routing_key for m in shown] == ["observation.calibrated.v1", "plot.requested.v1"]
    assert shown[1].observation_id == shown[0].observation_id
    hidden = await service.calibrator.on_upload_received(upload(observation_id="f" * 32))
    assert [m.routing_key for m in hidden] == ["observation.calibrated.v1"]
    assert service.plot_pool.calls == []  # asking is not drawing: the plot queue draws


async def test_a_requested_plot_is_drawn_once_and_asked_again_answers_without_drawing():
    service = Service()
    [answer] = await service.calibrator.on_upload_received(upload())
    request = PlotRequestedV1(observation_id=answer.observation_id)
    [rendered] = await service.plotter.on_requested(request)
    [again] = await service.plotter.on_requested(request)
    assert isinstance(rendered, PlotRenderedV1) and rendered.status == "calibrated"
    assert (again.observation_id, again.status) == (rendered.observation_id, rendered.status)
    assert service.plot_pool.names() == ["draw_plot"]
    assert service.store.plots[answer.observation_id].endswith(b"ivo://Gaia16aye  point 42")


async def test_a_plot_of_an_unknown_observation_is_declined_with_the_reason_and_nothing_is_drawn():
    service = Service()
    [declined] = await service.plotter.on_requested(PlotRequestedV1(observation_id="0" * 32))
    assert isinstance(declined, PlotDeclinedV1) and declined.observation_id == "0" * 32
    assert "no calibration of observation" in declined.reason
    assert service.plot_pool.calls == [] and service.store.plots == {}




async def test_expired_dry_runs_are_looked_for_at_most_once_a_purge_interval(monkeypatch):
    from services.calibration import handlers as calibration_handlers
    service = Service()
    service.store.bytes[("scratch", UPLOAD_ID)] = service.store.bytes.pop(("uploads", UPLOAD_ID))
    for n in range(3):
        await service.calibrator.on_upload_received(upload(dry_run=True, followup_id=None, bucket="scratch",
                                                           observation_id=f"dry{n}"))
    assert service.store.purges == 1 and service.store.saved == ["dry0", "dry1", "dry2"]
    monkeypatch.setattr(calibration_handlers, "PURGE_INTERVAL_S", 0.0)
    service.calibrator._next_purge = 0.0
    for n in range(2):
        await service.calibrator.on_upload_received(upload(dry_run=True, followup_id=None, bucket="scratch",
                                                           observation_id=f"again{n}"))
    assert service.store.purges == 3


async def test_a_dry_run_that_came_inline_is_calibrated_from_its_message_and_names_no_stored_input():
    stored, inline = Service(), Service()
    [from_store] = await stored.calibrator.on_upload_received(upload(dry_run=True, followup_id=None))
    data = inline.store.bytes.pop(("uploads", UPLOAD_ID))  # nothing stored: the message carries the bytes
    [answer] = await inline.calibrator.on_upload_received(
        upload(dry_run=True, followup_id=None, bucket="inline", file_id="", inline_data=data))
    assert isinstance(answer, ObservationCalibratedV1) and answer.dry_run
    assert answer.result == from_store.result and (answer.file_id, answer.bucket) == (None, None)
    [failed] = await inline.calibrator.on_upload_received(
        upload(dry_run=True, followup_id=None, bucket="inline", file_id="", inline_data=b"no catalogue\n",
               observation_id="other"))
    assert isinstance(failed, ObservationFailedV1) and failed.reason and (failed.file_id, failed.bucket) == (None, None)
