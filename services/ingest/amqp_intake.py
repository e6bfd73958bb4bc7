"""Uploads published to our broker by an observatory (routing key ``upload.submitted.v1``).

The body is the catalogue's bytes; the headers carry the CPCS form fields (``hashtag``,
``EventID``, ``MJD``, ``expTime``, ``matchDist``, ``forceFilter``, ``dryRun``, ``filename``...), or
``catalogue_url`` names where to fetch the bytes instead. The answer (the JSON of /cgi/upload, or
``{"error": ..., "status": ...}``) goes to the message's ``reply_to`` queue with its correlation id.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid

import aiohttp

from services.ingest.answers import CALIBRATION_FAILED, amqp_reply
from services.ingest.cpcs_fields import request_from_fields
from services.ingest.deps import IngestDeps
from services.ingest.errors import IngestError, InvalidInput, TooLarge
from services.ingest.ports import AcceptUpload, OutcomeWaiters, Reply, UploadDelivery
from services.ingest.results import cpcs_answer, status_url
from shared.contracts import ObservationCalibratedV1

log = logging.getLogger(__name__)
ROUTING_KEY = "upload.submitted.v1"


class AmqpIntake:
    """Accept an upload now, answer ``reply_to`` when its outcome arrives (or after the wait).

    It calls ``deps.uploads`` (``AcceptUpload``), ``deps.waiters`` (``OutcomeWaiters``), reads
    ``deps.settings`` and answers through ``broker`` (``Reply``)."""

    def __init__(self, deps: IngestDeps, broker: Reply):
        self.deps, self.broker = deps, broker
        self.uploads: AcceptUpload = deps.uploads
        self.waiters: OutcomeWaiters = deps.waiters
        self._tasks: set[asyncio.Task] = set()

    async def on_submission(self, delivery: UploadDelivery) -> None:
        headers = {str(k): _text(v) for k, v in (delivery.headers or {}).items()}
        correlation_id = delivery.correlation_id or uuid.uuid4().hex
        try:
            data = delivery.body or await self._fetch(headers.get("catalogue_url", ""))
            req = request_from_fields(headers, data, headers.get("filename", "catalogue"),
                                      headers.get("hashtag", ""))
            first = self.waiters.expect(correlation_id)
            try:
                accepted = await self.uploads.accept(req, correlation_id)
            except BaseException:
                if first:  # a copy refused must not take the outcome from the message still waiting
                    self.waiters.forget(correlation_id)
                raise
        except IngestError as exc:
            await self._reply(delivery.reply_to, amqp_reply(exc), correlation_id)
            return
        task = asyncio.create_task(self._answer_later(delivery.reply_to, correlation_id, accepted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_later(self, reply_to, correlation_id, accepted) -> None:
        outcome = await self.waiters.wait(correlation_id, self.deps.settings.upload_wait_s)
        public = self.deps.settings.public_url
        if outcome is None:
            answer = {"status": "processing", "observation_id": accepted.observation_id,
                      "followup_id": accepted.followup_id,
                      "status_url": status_url(public, accepted.observation_id)}
        elif isinstance(outcome, ObservationCalibratedV1):
            answer = cpcs_answer(outcome, public)
        else:
            answer = {"error": outcome.reason, "status": CALIBRATION_FAILED, "observation_id": outcome.observation_id}
        await self._reply(reply_to, answer, correlation_id)

    async def _reply(self, reply_to: str | None, answer: dict, correlation_id: str) -> None:
        if reply_to:
            await self.broker.reply(reply_to, json.dumps(answer).encode(), correlation_id=correlation_id)

    async def _fetch(self, url: str) -> bytes:
        if not url:
            raise InvalidInput("the message has no catalogue: put its bytes in the body or give catalogue_url")
        limit = int(self.deps.settings.max_upload_mb * 1e6)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
                async with session.get(url) as response:
                    if response.status != 200:
                        raise InvalidInput(f"catalogue_url answered HTTP {response.status}")
                    data = await response.content.read(limit + 1)
        except aiohttp.ClientError as exc:
            raise InvalidInput(f"catalogue_url could not be fetched: {exc}") from exc
        if len(data) > limit:
            raise TooLarge("the catalogue behind catalogue_url is too large")
        return data

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
