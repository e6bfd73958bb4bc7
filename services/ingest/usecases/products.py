"""The products of an image upload (named by photometry's ``image.products.v1``): who may have them."""
from __future__ import annotations

import re

from services.ingest.errors import Forbidden, NotFound
from services.ingest.store import IngestStore

_OBSERVATION_ID = re.compile(r"^[0-9a-f]{32}$")


def may_see(doc: dict, *, observatory_id: int | None, is_admin: bool) -> bool:
    """The observatory that uploaded the image, or an admin."""
    return is_admin or (observatory_id is not None and observatory_id == doc.get("observatory_id"))


async def image_products(store: IngestStore, observation_id: str, *, observatory_id: int | None,
                         is_admin: bool) -> dict:
    """The observation's products record; ``NotFound`` or ``Forbidden`` with the observer's sentence."""
    if not _OBSERVATION_ID.match(observation_id):
        raise NotFound("there is no observation with this id: it is the 32-character hex id of the upload's answer")
    doc = await store.find_products(observation_id)
    if doc is None:
        raise NotFound("this observation has no image products: only FITS images get them, and a dry run's are "
                       "kept for a day")
    if not may_see(doc, observatory_id=observatory_id, is_admin=is_admin):
        raise Forbidden("these products belong to another observatory's upload: log in with that observatory's "
                        "hashtag")
    return doc


async def product_bytes(store: IngestStore, doc: dict, kind: str) -> tuple[dict, bytes]:
    """(the product's entry, its bytes); ``NotFound`` when the image has none of this kind or it is gone."""
    product = next((p for p in doc.get("products", []) if p["kind"] == kind), None)
    if product is None:
        raise NotFound("this image has no such product: the cutouts exist only when the event is on the frame")
    data = await store.product_bytes(product["file_id"])
    if data is None:
        raise NotFound("this product is no longer stored (the point was deleted or the dry run expired)")
    return product, data
