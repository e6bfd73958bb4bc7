"""Who owns which MongoDB collection and GridFS bucket: one table, checked by the boundary test.

A service reads and writes only its own collections; it learns about other services' data from
their messages. GridFS blobs are claim checks: the owner writes (and deletes) a blob and sends its
id in a message; a service named in :data:`BLOB_READERS` may read a blob of that bucket by the id
it was given, never write or delete one. The reference catalogue store (``shared/refcat``) is
shared code with its own collections, used by the services in :data:`REFCAT_USERS`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Owned:
    collections: frozenset[str]
    buckets: frozenset[str] = frozenset()


OWNERS: dict[str, Owned] = {
    "ingest": Owned(
        collections=frozenset({"events", "event_aliases", "observatories", "tokens", "observations",
                               "upload_hashes", "recalibrations", "recalibration_results", "voevent_packets",
                               "counters", "image_products"}),
        buckets=frozenset({"uploads", "scratch"})),
    "calibration": Owned(collections=frozenset({"calibrations", "calibration_history"}),
                         buckets=frozenset({"plots", "calibration_stars"})),
    "lightcurve": Owned(collections=frozenset({"points", "deleted_points", "alert_points", "lightcurve_events",
                                               "lightcurve_aliases", "lightcurve_observations"})),
    "astrometry": Owned(collections=frozenset()),
    "photometry": Owned(collections=frozenset({"image_metadata"}), buckets=frozenset({"catalogues", "products"})),
}

#: Read-only access to another service's blobs, by the id a message carries (service -> buckets).
BLOB_READERS: dict[str, frozenset[str]] = {
    "astrometry": frozenset({"uploads", "scratch"}),  # image.received.v1 file_id
    "photometry": frozenset({"uploads", "scratch"}),  # image.solved.v1 file_id
    "calibration": frozenset({"uploads", "scratch", "catalogues"}),  # upload.received.v1, catalogue.measured.v1
    "lightcurve": frozenset({"plots"}),  # /plots/{observation}.png, the plot of plot.rendered.v1
    "ingest": frozenset({"products"}),  # image.products.v1: the downloads of /results/{observation}/...
}

#: The reference catalogue store's collections (``shared.refcat.store``) and who uses it.
REFCAT_COLLECTIONS = frozenset({"refcat_surveys", "refcat_blocks"})
REFCAT_USERS = frozenset({"calibration", "astrometry", "ingest"})  # ingest: reads (the upload form's filters)


def owner_of_collection(name: str) -> str | None:
    """The service owning a collection (GridFS ``<bucket>.files``/``.chunks`` belong to the bucket's owner)."""
    bucket = owner_of_bucket(name.rsplit(".", 1)[0]) if name.endswith((".files", ".chunks")) else None
    if bucket:
        return bucket
    return next((service for service, owned in OWNERS.items() if name in owned.collections), None)


def owner_of_bucket(name: str) -> str | None:
    return next((service for service, owned in OWNERS.items() if name in owned.buckets), None)
