"""Composition root of the photometry service."""
from __future__ import annotations

import logging
from functools import partial

from services.photometry.handlers import Measurer, PhotometryDeps
from services.photometry.settings import PhotometrySettings
from shared.imaging import buckets, running_image_stage
from shared.settings import LoadedParameters

log = logging.getLogger(__name__)


def _build(db, executor, params: LoadedParameters | None = None):
    uploads, scratch, catalogues, products = buckets(db, "uploads", "scratch", "catalogues", "products")
    deps = PhotometryDeps(db=db, uploads=uploads, scratch=scratch, catalogues=catalogues, executor=executor,
                          products=products)
    measurer = Measurer(deps, params)
    return deps, {"image.solved.v1": measurer.on_image_solved,
                  "observation.deleted.v1": measurer.on_observation_deleted}


def running(settings: PhotometrySettings):
    log.info("measurement parameters: %s", settings.params.provenance())
    return running_image_stage(settings, "photometry", "image.solved.v1", partial(_build, params=settings.params))
