"""Composition root of the photometry service."""
from __future__ import annotations

from shared.imaging import buckets, running_image_stage
from shared.settings import Settings
from services.photometry.handlers import Measurer, PhotometryDeps


def _build(db, executor):
    uploads, scratch, catalogues = buckets(db, "uploads", "scratch", "catalogues")
    deps = PhotometryDeps(db=db, uploads=uploads, scratch=scratch, catalogues=catalogues, executor=executor)
    measurer = Measurer(deps)
    return deps, {"image.solved.v1": measurer.on_image_solved,
                  "observation.deleted.v1": measurer.on_observation_deleted}


def running(settings: Settings):
    return running_image_stage(settings, "photometry", "image.solved.v1", _build)
