"""Composition root of the astrometry service."""
from __future__ import annotations

import logging

from shared.imaging import buckets, running_image_stage
from shared.refcat.store import RefcatStore
from services.astrometry.handlers import AstrometryDeps, Solver
from services.astrometry.settings import AstrometrySettings

log = logging.getLogger(__name__)


def running(settings: AstrometrySettings):
    def build(db, executor):
        uploads, scratch = buckets(db, "uploads", "scratch")
        deps = AstrometryDeps(db=db, uploads=uploads, scratch=scratch, refcat=RefcatStore(db), executor=executor)
        return deps, Solver(deps, settings.params.values).on_image_received

    log.info("solver parameters: %s", settings.params.provenance())
    return running_image_stage(settings, "astrometry", "image.received.v1", build)
