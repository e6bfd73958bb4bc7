"""The outbox relay and the reconciler of stored uploads.

A stored upload's observation is inserted with the message to publish in its ``outbox`` (one write, see
``usecases/uploads.py``). The upload publishes it at once when it can; whatever the broker has not
confirmed (it was away, ingest died in between) is published here every ``CPCS_OUTBOX_INTERVAL_S`` and
cleared from the outbox once the broker confirmed it. Every ``CPCS_RECONCILE_INTERVAL_S`` the reconciler
publishes again the message of each observation that has had no outcome ``CPCS_RECONCILE_AFTER_S`` after
it was received (or last re-driven): a message lost downstream (a queue purged, a dead letter) is driven
again. The consumers are idempotent (a point, a calibration are keyed by the observation), so a message
sent twice adds nothing twice.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from services.ingest.store import IngestStore
from shared import observability as obs
from shared.messaging import decode

log = logging.getLogger(__name__)

Publish = Callable[..., Awaitable[None]]
#: An upload publishes its own message first; the relay leaves a fresh one this long to it.
FRESH_S = 2.0


class OutboxRelay:
    def __init__(self, store: IngestStore, publish: Publish, *, interval_s: float = 1.0,
                 reconcile_interval_s: float = 30.0, reconcile_after_s: float = 300.0,
                 watch_dead_letters: Callable[[], Awaitable[object]] | None = None):
        self.store, self.publish = store, publish
        self.interval_s, self.reconcile_interval_s = interval_s, reconcile_interval_s
        self.reconcile_after_s = reconcile_after_s
        self.watch_dead_letters = watch_dead_letters
        self._task: asyncio.Task | None = None

    async def relay(self, *, fresh_s: float = FRESH_S) -> int:
        """Publish the messages the broker has not confirmed (older than ``fresh_s``); how many were."""
        sent = 0
        cutoff = time.time() - fresh_s
        for doc in await self.store.pending_outbox():
            if float(doc.get("received_at_unix") or 0.0) > cutoff:
                continue
            entries = list(doc.get("outbox") or [])
            for entry in entries:
                message = decode(entry["routing_key"], entry["body"].encode())
                await self.publish(message, correlation_id=entry.get("correlation_id"))
            await self.store.clear_outbox(doc["_id"], [e["id"] for e in entries])
            sent += len(entries)
        if sent:
            log.info("published %d message(s) from the outbox", sent)
        return sent

    async def reconcile(self, *, now_unix: float | None = None) -> int:
        """Publish again the message of each observation not final after ``reconcile_after_s``."""
        now_unix = time.time() if now_unix is None else now_unix
        redriven = 0
        for doc in await self.store.not_final_since(now_unix - self.reconcile_after_s):
            stored = doc.get("message")
            if not stored or doc.get("outbox_pending"):
                continue  # older than the outbox, or not even published once: the relay's
            message = decode(stored["routing_key"], stored["body"].encode())
            await self.publish(message, correlation_id=stored.get("correlation_id"))
            await self.store.note_redriven(doc["_id"], now_unix)
            redriven += 1
            log.warning("observation %s had no outcome after %.0f s: its %s was published again (re-drive %d)",
                        doc["_id"], self.reconcile_after_s, stored["routing_key"], int(doc.get("redrives") or 0) + 1)
        return redriven

    async def run(self) -> None:
        """Relay every ``interval_s``, reconcile every ``reconcile_interval_s``, until cancelled; an outage
        only delays the next round."""
        next_reconcile = time.monotonic() + self.reconcile_interval_s
        while True:
            try:
                await self.relay()
                obs.OUTBOX_PENDING.set(await self.store.count_pending_outbox())
                if time.monotonic() >= next_reconcile:
                    next_reconcile = time.monotonic() + self.reconcile_interval_s
                    await self.reconcile()
                    if self.watch_dead_letters is not None:
                        await self.watch_dead_letters()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or the broker is away: the next round tries again
                log.warning("the outbox relay waits for the next round: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
