"""Composition root of the astrometry service."""
from __future__ import annotations

from shared.imaging import buckets, running_image_stage
from shared.refcat.store import RefcatStore
from shared.settings import Settings
from services.astrometry.handlers import AstrometryDeps, Solver


def _build(db, executor):
    uploads, scratch = buckets(db, "uploads", "scratch")
    deps = AstrometryDeps(db=db, uploads=uploads, scratch=scratch, refcat=RefcatStore(db), executor=executor)
    return deps, Solver(deps).on_image_received


def running(settings: Settings):
    return running_image_stage(settings, "astrometry", "image.received.v1", _build)
