"""An upload's status, and deleting a point everywhere."""
from __future__ import annotations

from services.ingest.errors import Forbidden, NotFound
from services.ingest.store import IngestStore
from shared.contracts import ObservationDeletedV1


async def find_observation(store: IngestStore, key: str) -> dict:
    """The observation with this id, or with this follow-up id when ``key`` is a number."""
    doc = (await store.find_observation_by_followup(int(key)) if key.isdigit()
           else await store.find_observation(key))
    if doc is None:
        raise NotFound(f"there is no observation {key}")
    return doc


async def delete_observation(store: IngestStore, publish, token_record: dict, *, followup_id: int | None = None,
                             observation_id: str | None = None) -> dict:
    """Delete a point owned by the token's observatory (or any, for an admin) everywhere."""
    observation = (await store.find_observation_by_followup(followup_id) if followup_id is not None
                   else await store.find_observation(observation_id))
    if observation is None:
        raise NotFound(f"there is no point {followup_id or observation_id}")
    if not token_record.get("is_admin") and token_record.get("observatory_id") != observation["observatory_id"]:
        raise Forbidden("only the observatory that uploaded a point (or an admin) may delete it")
    await publish(ObservationDeletedV1(
        observation_id=observation["_id"], followup_id=observation["followup_id"],
        event_ivorn=observation["event_ivorn"], deleted_by=token_record.get("user", "")))
    await store.delete_observation(observation["_id"])
    await store.release_upload(observation["_id"])
    await store.delete_bytes(observation["file_id"])
    return observation
