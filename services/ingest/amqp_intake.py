"""Uploads published to our broker by an observatory (routing key ``upload.submitted.v1``).

The body is the catalogue's bytes; the headers carry the CPCS form fields (``hashtag``,
``EventID``, ``MJD``, ``expTime``, ``matchDist``, ``forceFilter``, ``dryRun``, ``filename``...), or
``catalogue_url`` names where to fetch the bytes instead. The answer (the JSON of /cgi/upload, or
``{"error": ..., "status": ...}``) goes to the message's ``reply_to`` queue with its correlation id.

A ``catalogue_url`` is fetched only after the fields and the token are checked (nobody without an upload
token makes ingest fetch anything), through ``services.ingest.fetch`` (public addresses only unless the
operator allows more); a fetched file that cannot be read is refused with one sentence that quotes
nothing of it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from typing import Any, Protocol

from services.ingest import fetch
from services.ingest.answers import CALIBRATION_FAILED, amqp_reply
from services.ingest.cpcs_fields import request_from_fields
from services.ingest.deps import IngestDeps
from services.ingest.errors import Forbidden, IngestError, InvalidInput, NotAuthenticated
from services.ingest.ports import AcceptUpload, OutcomeWaiters, Reply, UploadDelivery
from services.ingest.results import cpcs_answer, status_url
from shared.contracts import ObservationCalibratedV1

log = logging.getLogger(__name__)
ROUTING_KEY = "upload.submitted.v1"
NOT_READABLE = ("the file behind catalogue_url is not a catalogue or image this server reads (SExtractor "
                "ASCII_HEAD, a FITS table, FITS_LDAC or a FITS image, maybe gzip-compressed)")


class FindToken(Protocol):
    """The token records (``IngestStore``): who may upload."""

    async def find_token(self, token: str) -> dict[str, Any] | None: ...


class AmqpIntake:
    """Accept an upload now, answer ``reply_to`` when its outcome arrives (or after the wait).

    It calls ``deps.uploads`` (``AcceptUpload``), ``deps.waiters`` (``OutcomeWaiters``), reads
    ``deps.settings`` and answers through ``broker`` (``Reply``)."""

    def __init__(self, deps: IngestDeps, broker: Reply, tokens: FindToken | None = None):
        self.deps, self.broker = deps, broker
        self.uploads: AcceptUpload = deps.uploads
        self.waiters: OutcomeWaiters = deps.waiters
        self.tokens: FindToken = tokens if tokens is not None else deps.store
        self._tasks: set[asyncio.Task] = set()

    async def on_submission(self, delivery: UploadDelivery) -> None:
        headers = {str(k): _text(v) for k, v in (delivery.headers or {}).items()}
        correlation_id = delivery.correlation_id or uuid.uuid4().hex
        fetched = not delivery.body
        try:
            req = request_from_fields(headers, delivery.body or b"", headers.get("filename", "catalogue"),
                                      headers.get("hashtag", ""))
            if fetched:
                req = dataclasses.replace(req, data=await self._fetch(headers.get("catalogue_url", ""), req.token))
            first = self.waiters.expect(correlation_id)
            try:
                accepted = await self.uploads.accept(req, correlation_id)
            except InvalidInput as exc:
                if first:
                    self.waiters.forget(correlation_id)
                if fetched:  # the reader's sentence may quote the file, and the file may be anybody's
                    raise InvalidInput(NOT_READABLE) from exc
                raise
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

    async def _fetch(self, url: str, token: str) -> bytes:
        """The bytes behind ``url``, fetched only for a token that may upload."""
        if not url:
            raise InvalidInput("the message has no catalogue: put its bytes in the body or give catalogue_url")
        record = await self.tokens.find_token(token) if token else None
        if record is None:
            raise NotAuthenticated("unknown or missing hashtag: uploads need a valid token")
        if not record.get("allow_upload", True) or record.get("observatory_id") is None:
            raise Forbidden("this hashtag is not allowed to upload")
        settings = self.deps.settings
        policy = fetch.FetchPolicy(max_bytes=int(settings.max_upload_mb * 1e6), timeout_s=settings.fetch_timeout_s,
                                   max_redirects=settings.fetch_max_redirects,
                                   allow_private=settings.fetch_allow_private,
                                   allow_hosts=fetch.hosts_list(settings.fetch_allow_hosts))
        return await fetch.fetch(url, policy)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
