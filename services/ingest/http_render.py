"""How the HTTP adapters write an ingest error or an upload's outcome; the statuses come from ``answers``."""
from __future__ import annotations

from aiohttp import web

from services.ingest.answers import CALIBRATION_FAILED, http_status
from services.ingest.errors import IngestError
from services.ingest.results import cpcs_answer, plot_url, status_url
from services.ingest.usecases.uploads import Waited
from shared.contracts import ObservationCalibratedV1


def retry_after(exc: IngestError) -> dict[str, str]:
    """The ``Retry-After`` header of an error that says when to try again (``extra['retry_after_s']``)."""
    seconds = exc.extra.get("retry_after_s")
    return {} if seconds is None else {"Retry-After": str(max(1, round(float(seconds))))}


def plain_refusal(exc: IngestError) -> web.Response:
    """The CPCS form endpoints' answer: the status and the reason as one line of text."""
    return web.Response(status=http_status(exc), text=str(exc) + "\n", headers=retry_after(exc))


def problem(exc: IngestError) -> web.Response:
    """The REST answer: ``{"error": reason, "status": status}`` plus the error's extra fields."""
    status = http_status(exc)
    return web.json_response({"error": str(exc), "status": status, **exc.extra}, status=status,
                             headers=retry_after(exc))


def not_forwarded(exc: IngestError) -> web.Response:
    """A forwarded read path whose service does not answer: ``{"error": reason}`` (as openapi.yaml gives)."""
    return web.json_response({"error": str(exc)}, status=http_status(exc))


def upload_answer(waited: Waited, public_url: str) -> tuple[int, dict]:
    """(HTTP status, answer) of an upload that was accepted and waited for."""
    accepted, outcome = waited.accepted, waited.outcome
    if outcome is None and accepted.dry_run:
        return 202, {"status": "processing", "followup_id": None, "observation_id": accepted.observation_id,
                     "message": "the dry run is still being calibrated and dry runs are not kept: "
                                "send it again in a moment", "status_url": None}
    if outcome is None:
        return 202, {"status": "processing", "followup_id": accepted.followup_id,
                     "observation_id": accepted.observation_id,
                     "message": "the calibration is still running; ask the status URL for the result",
                     "status_url": status_url(public_url, accepted.observation_id)}
    if isinstance(outcome, ObservationCalibratedV1):
        return 200, cpcs_answer(outcome, public_url)
    return CALIBRATION_FAILED, {"error": outcome.reason, "status": CALIBRATION_FAILED,
                                "followup_id": outcome.followup_id, "observation_id": outcome.observation_id,
                                "image_link": plot_url(public_url, outcome.observation_id)}
