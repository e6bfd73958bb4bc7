"""Composition root of the astrometry service."""
from __future__ import annotations

import logging
from functools import partial

from services.astrometry.handlers import AstrometryDeps, Solver
from services.astrometry.science import AstrometryParams
from services.astrometry.science.solver import DEFAULT_PARAMS
from services.astrometry.settings import AstrometrySettings
from shared.imaging import buckets, running_image_stage
from shared.refcat.store import RefcatStore

log = logging.getLogger(__name__)


def _build(db, executor, params: AstrometryParams = DEFAULT_PARAMS):
    uploads, scratch = buckets(db, "uploads", "scratch")
    deps = AstrometryDeps(db=db, uploads=uploads, scratch=scratch, refcat=RefcatStore(db), executor=executor)
    return deps, Solver(deps, params).on_image_received


def running(settings: AstrometrySettings):
    log.info("solver parameters: %s", settings.params.provenance())
    return running_image_stage(settings, "astrometry", "image.received.v1",
                               partial(_build, params=settings.params.values))
