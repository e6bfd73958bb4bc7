"""Composition root of the photometry service."""
from __future__ import annotations

import logging

from shared.imaging import buckets, running_image_stage
from services.photometry.handlers import Measurer, PhotometryDeps
from services.photometry.settings import PhotometrySettings

log = logging.getLogger(__name__)


def running(settings: PhotometrySettings):
    def build(db, executor):
        uploads, scratch, catalogues = buckets(db, "uploads", "scratch", "catalogues")
        deps = PhotometryDeps(db=db, uploads=uploads, scratch=scratch, catalogues=catalogues, executor=executor)
        measurer = Measurer(deps, settings.params)
        return deps, {"image.solved.v1": measurer.on_image_solved,
                      "observation.deleted.v1": measurer.on_observation_deleted}

    log.info("measurement parameters: %s", settings.params.provenance())
    return running_image_stage(settings, "photometry", "image.solved.v1", build)
