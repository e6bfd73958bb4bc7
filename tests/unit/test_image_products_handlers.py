"""Photometry stores an image's products and names them in image.products.v1 (again on a redelivery,
dropped with the point, a dry run's after a day); ingest keeps the ids with the observation."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from bson import ObjectId

from services.ingest.handlers import ProductRecorder
from services.photometry.handlers import DRY_RUN_PRODUCTS_KEEP, Measurer, PhotometryDeps
from shared.contracts import AstrometrySummary, CatalogueMeasuredV1, ImageProductsV1, ImageSolvedV1
from shared.simimage import make_reference_field, simulate_image
from tests.unit.test_image_handlers import DEC0, RA0, Catalogues, Database, Documents, Uploads, received


class Metadata(Documents):
    async def delete_one(self, query):
        self.docs.pop(query["_id"], None)


class Products:
    """The products bucket photometry writes: by observation, or by expiry."""

    def __init__(self):
        self.files: dict[ObjectId, tuple[bytes, dict]] = {}

    async def upload_from_stream(self, name, data, metadata=None):
        file_id = ObjectId()
        self.files[file_id] = (data, metadata or {})
        return file_id

    def find(self, query):
        def matches(meta):
            if "metadata.observation_id" in query:
                return meta["observation_id"] == query["metadata.observation_id"]
            cutoff = query["metadata.expires_at_unix"]["$lt"]
            return meta["expires_at_unix"] is not None and meta["expires_at_unix"] < cutoff
        found = [SimpleNamespace(_id=k) for k, (_, meta) in self.files.items() if matches(meta)]

        async def to_list(_length):
            return found
        return SimpleNamespace(to_list=to_list)

    async def delete(self, file_id):
        del self.files[file_id]


@pytest.fixture(scope="module")
def frame():
    reference = make_reference_field(ra_deg=RA0, dec_deg=DEC0, radius_deg=0.3, n_stars=4000, seed=4)
    return simulate_image(reference=reference, size_px=384, centre_ra_deg=RA0, centre_dec_deg=DEC0,
                          transient_mag=17.0, filter_name="r", seed=13, n_faint=64)


def solved_message(frame, uploads: Uploads, *, dry_run: bool) -> ImageSolvedV1:
    data, truth = frame
    message = received(data, truth, uploads.file_id)
    return ImageSolvedV1(**{**message.model_dump(exclude={"message_id", "occurred_at"}), "dry_run": dry_run,
                            "followup_id": None if dry_run else 5},
                         wcs_header=dict(truth["wcs_header"]),
                         astrometry=AstrometrySummary(rms_arcsec=0.08, n_stars=57))


def measurer_of(uploads: Uploads) -> tuple[Measurer, Products]:
    products = Products()
    deps = PhotometryDeps(db=Database(image_metadata=Metadata()), uploads=uploads, scratch=None,
                          catalogues=Catalogues(), executor=None, products=products)
    return Measurer(deps), products


async def test_products_are_stored_named_and_named_again_on_a_redelivery(frame):
    uploads = Uploads(frame[0])
    measurer, bucket = measurer_of(uploads)
    message = solved_message(frame, uploads, dry_run=False)
    measured, products = await measurer.on_image_solved(message)
    assert isinstance(measured, CatalogueMeasuredV1) and isinstance(products, ImageProductsV1)
    assert {p.kind for p in products.products} == {"catalogue_ascii", "catalogue_ldac", "wcs_header",
                                                   "cutout_png", "cutout_fits"}
    assert {str(k) for k in bucket.files} == {p.file_id for p in products.products}
    assert all(bucket.files[ObjectId(p.file_id)][0][:4] in (b"#   ", b"SIMP", b"NAXI", b"\x89PNG")
               for p in products.products)
    q = products.quality
    assert q.astrometry_rms_arcsec == 0.08 and q.astrometry_n_stars == 57 and q.cutout_size_px == 64
    assert q.fwhm_arcsec == measured.image_metadata.fwhm_arcsec and q.n_detected == measured.image_metadata.n_detected
    assert products.expires_at is None and products.observatory == message.observatory

    again = await measurer.on_image_solved(message)  # the broker delivers it again: the same answer
    assert [m.model_dump() for m in again] == [measured.model_dump(), products.model_dump()]
    assert len(bucket.files) == 5

    deleted = SimpleNamespace(observation_id=message.observation_id)
    await measurer.on_observation_deleted(deleted)
    assert bucket.files == {} and measurer.deps.db.image_metadata.docs == {}


async def test_a_dry_runs_products_expire_after_a_day(frame):
    uploads = Uploads(frame[0])
    measurer, bucket = measurer_of(uploads)
    _, products = await measurer.on_image_solved(solved_message(frame, uploads, dry_run=True))
    keep = DRY_RUN_PRODUCTS_KEEP.total_seconds()
    assert products.expires_at.timestamp() == pytest.approx(time.time() + keep, abs=60)
    assert await measurer.purge_expired_products() == 0 and len(bucket.files) == 5
    assert await measurer.purge_expired_products(now_unix=time.time() + keep + 60) == 5
    assert bucket.files == {}


class ProductStore:
    def __init__(self, observations: set[str]):
        self.observations, self.records, self.purged = observations, {}, 0

    async def find_observation(self, observation_id):
        return {"_id": observation_id} if observation_id in self.observations else None

    async def record_products(self, doc):
        self.records[doc["_id"]] = doc

    async def purge_expired_products(self):
        self.purged += 1
        return 0


def products_message(**changes) -> ImageProductsV1:
    import json
    from pathlib import Path
    sample = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples" / "image.products.v1.json"
    return ImageProductsV1.model_validate(json.loads(sample.read_text()) | changes)


async def test_ingest_keeps_the_ids_with_the_observation_and_a_dry_runs_until_it_expires():
    stored = products_message()
    store = ProductStore({stored.observation_id})
    recorder = ProductRecorder(store)
    await recorder.on_image_products(stored)
    doc = store.records[stored.observation_id]
    assert doc["observatory_id"] == 3 and doc["followup_id"] == 42 and doc["expires_at_unix"] is None
    assert [p["file_id"] for p in doc["products"]] == [p.file_id for p in stored.products]
    assert doc["quality"]["astrometry_rms_arcsec"] == 0.083

    dry = products_message(observation_id="d" * 32, dry_run=True, followup_id=None,
                           expires_at="2026-12-03T04:00:00Z")
    await recorder.on_image_products(dry)  # no observation for a dry run: kept until it expires
    assert store.records["d" * 32]["expires_at_unix"] == dry.expires_at.timestamp()

    gone = products_message(observation_id="e" * 32)  # the point was deleted meanwhile
    await recorder.on_image_products(gone)
    assert "e" * 32 not in store.records and store.purged == 3


class RacedProducts(Products):
    """Another delivery deletes each file between our listing and our delete; the server then answers the
    delete with an error of its own (as nx-27017 does), and its GridFS cursor finds nothing."""

    def __init__(self, gone: set):
        super().__init__()
        self.gone = gone

    async def delete(self, file_id):
        from pymongo.errors import OperationFailure

        if file_id in self.gone:
            raise OperationFailure(f"File with id {file_id} not found")
        await super().delete(file_id)

    def find(self, query):
        if "_id" in query:
            async def to_list(length):
                if length is not None:  # pymongo's GridFS cursor: to_list(n) raises when it has fewer
                    raise StopAsyncIteration
                return []
            return SimpleNamespace(to_list=to_list)
        return super().find(query)


async def test_a_product_deleted_meanwhile_by_another_delivery_is_no_error(frame):
    uploads = Uploads(frame[0])
    measurer, bucket = measurer_of(uploads)
    message = solved_message(frame, uploads, dry_run=False)
    await measurer.on_image_solved(message)
    raced = RacedProducts(gone=set(bucket.files))
    raced.files = dict(bucket.files)
    measurer.deps.products = raced
    await measurer.on_observation_deleted(SimpleNamespace(observation_id=message.observation_id))
    assert measurer.deps.db.image_metadata.docs == {}
