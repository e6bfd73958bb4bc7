"""Waiting for the pipeline's answer to an upload, and writing it the way CPCS clients expect."""
from __future__ import annotations

import asyncio
import html

from shared.contracts import ObservationCalibratedV1, ObservationFailedV1

Outcome = ObservationCalibratedV1 | ObservationFailedV1


class ResultWaiters:
    """Futures keyed by correlation id, resolved when the result message reaches this process."""

    def __init__(self):
        self._futures: dict[str, asyncio.Future] = {}

    def expect(self, correlation_id: str) -> bool:
        """Await this id's outcome; ``False`` when it was awaited already (the same message twice in
        flight): both wait for the one outcome, and only the first may ``forget`` it."""
        if correlation_id in self._futures:
            return False
        self._futures[correlation_id] = asyncio.get_running_loop().create_future()
        return True

    async def wait(self, correlation_id: str, timeout_s: float) -> Outcome | None:
        future = self._futures[correlation_id]
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            return None
        finally:
            self._futures.pop(correlation_id, None)

    def forget(self, correlation_id: str) -> None:
        self._futures.pop(correlation_id, None)

    async def on_result(self, message: Outcome) -> None:
        future = self._futures.get(message.correlation_id)
        if future is not None and not future.done():
            future.set_result(message)


def plot_url(public_url: str, observation_id: str) -> str:
    return f"{public_url}/plots/{observation_id}.png"


#: What the MJD of every point means (typed, or read from a catalogue's or an image's header).
MJD_CONVENTION = "mid-exposure"


def status_url(public_url: str, observation_id: str) -> str:
    return f"{public_url}/api/v1/observations/{observation_id}"


def cpcs_answer(message: ObservationCalibratedV1, public_url: str) -> dict:
    """The JSON of the original /cgi/upload, with our extra keys after the original ones."""
    r = message.result
    return {
        "image_link": plot_url(public_url, message.observation_id),
        "mag": r.mag, "mag_err": -1 if r.is_limit else r.mag_err,
        # a limit has no star: its position is the event's
        "ra": r.ra_deg if r.ra_deg is not None else message.event.ra_deg,
        "dec": r.dec_deg if r.dec_deg is not None else message.event.dec_deg, "zeropoint": r.zeropoint,
        "outlier_fraction": r.outlier_fraction, "scatter": r.scatter, "npoints": r.npoints,
        "followup_id": message.followup_id, "filter": r.band, "survey": r.survey,
        # ours
        "is_limit": r.is_limit, "limit_sigma": r.limit_sigma, "calib_err": r.calib_err,
        "zp_err": r.zp_err, "total_err": r.total_err, "limit_err": r.limit_err, "colour_err": r.colour_err,
        "colour_note": r.colour_note,
        "match_radius_method": r.match_radius_method, "mode": r.mode, "dry_run": message.dry_run,
        "observation_id": message.observation_id, "match_radius_arcsec": r.match_radius_arcsec,
        "algorithm_version": message.algorithm_version,
        "mjd": message.mjd, "mjd_convention": MJD_CONVENTION,
        "status_url": None if message.dry_run else status_url(public_url, message.observation_id),
    }


def cpcs_html(answer: dict, *, no_plot: bool) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in answer.items() if k != "image_link")
    plot = "" if no_plot else f'<p><img src="{html.escape(answer["image_link"])}" alt="calibration plot"></p>'
    kind = "upper limit" if answer.get("is_limit") else "calibrated magnitude"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Calibration result</title></head>"
            f"<body><h1>Calibration result: {kind}</h1><table>{rows}</table>{plot}</body></html>")
