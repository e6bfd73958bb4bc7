"""The image-path services follow the messages their handlers are for (composition root; nothing is sent)."""
from pymongo import AsyncMongoClient

from services.photometry.app import _build


async def test_photometry_follows_deleted_points_as_well_as_solved_images():
    client = AsyncMongoClient("mongodb://127.0.0.1:9", connect=False)  # a handle only: no query is made
    try:
        _, routes = _build(client["wiring"], None)
    finally:
        await client.close()
    assert set(routes) == {"image.solved.v1", "observation.deleted.v1"}
    assert routes["observation.deleted.v1"].__name__ == "on_observation_deleted"
    assert routes["image.solved.v1"].__name__ == "on_image_solved"
