"""What the image-path services share: reading an upload's bytes, its upload values, the header record
as the messages carry it, a failure message."""
from __future__ import annotations

from contextlib import asynccontextmanager

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile

from shared.contracts import ImageReceivedV1, ObservationFailedV1, ObservationRecord
from shared.db import make_client
from shared.fitsimage import ObservationHeader
from shared.messaging import Broker
from shared.ops import Ops, serving
from shared.pools import process_pool


def upload_fields(message: ImageReceivedV1) -> dict:
    """Values the observer gave with the upload; they fill what the image header lacks."""
    return {k: v for k, v in (("mjd", message.mjd), ("exptime_s", message.exptime_s),
                              ("filter", message.declared_filter)) if v is not None}


def observation_record(header: ObservationHeader) -> ObservationRecord:
    """The standardised header as the image messages carry it."""
    return ObservationRecord.model_validate(header.to_dict())


def observation_header(record: ObservationRecord) -> ObservationHeader:
    """The record of a message as the science functions take it."""
    values = record.model_dump()
    values["notes"] = tuple(values["notes"])
    return ObservationHeader(**values)


def declared(model, values: dict) -> dict:
    """The entries of ``values`` that ``model`` (a contract model) declares; the rest stays in the service."""
    return {k: v for k, v in values.items() if k in model.model_fields}


async def read_upload(deps, message: ImageReceivedV1) -> bytes | None:
    """The uploaded bytes (None if deleted meanwhile); ``deps`` has ``uploads`` and ``scratch`` buckets."""
    bucket = deps.scratch if message.bucket == "scratch" else deps.uploads
    try:
        return await (await bucket.open_download_stream(ObjectId(message.file_id))).read()
    except NoFile:
        return None


def failed(message: ImageReceivedV1, stage: str, reason: str) -> ObservationFailedV1:
    return ObservationFailedV1(observation_id=message.observation_id, followup_id=message.followup_id,
                               correlation_id=message.correlation_id, dry_run=message.dry_run,
                               event_ivorn=message.event.ivorn, stage=stage, reason=reason,
                               file_id=message.file_id, bucket=message.bucket)  # ingest cleans a dry run's copy


@asynccontextmanager
async def running_image_stage(settings, stage: str, routing_key: str, build):
    """Lifetime of an image-path service: database, process pool, broker, one consumer queue.

    ``build(db, executor)`` returns ``(deps, handler)``; the handler consumes ``routing_key`` on the
    queue ``<exchange>.<stage>``. ``handler`` may instead be a mapping of routing keys to handlers (the
    stage's own key among them) for a stage that also follows other messages.
    """
    client = make_client(settings.mongo_url.get_secret_value())
    executor = await process_pool(settings.process_workers)
    deps, handler = build(client[settings.mongo_db], executor)
    broker = Broker.from_settings(settings)
    await broker.start()
    routes = dict(handler) if isinstance(handler, dict) else {routing_key: handler}
    await broker.subscribe(f"{settings.exchange}.{stage}", routes)
    ops = Ops(stage, client[settings.mongo_db], broker)
    try:
        async with serving(ops, settings.metrics_host, settings.metrics_port):
            yield deps
    finally:
        await broker.close()
        executor.shutdown(wait=False, cancel_futures=True)
        await client.close()


def buckets(db, *names: str) -> list[AsyncGridFSBucket]:
    return [AsyncGridFSBucket(db, bucket_name=name) for name in names]
