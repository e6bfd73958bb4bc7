"""Process lifetime shared by every service: logging, signals, an orderly shutdown."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from shared.settings import Settings


def configure_logging(service: str) -> None:
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    logging.getLogger("pymongo").setLevel(logging.WARNING)


async def serve_until_stopped(running: AbstractAsyncContextManager) -> None:
    """Enter the service's context, wait for SIGINT/SIGTERM, then leave it (closing everything)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with running:
        await stop.wait()


def run(service: str, build: Callable[[Settings], AbstractAsyncContextManager]) -> None:
    """Entry point body of every service: settings built once, then served until a signal."""
    # one BLAS thread per process: on a small machine idle BLAS threads spinning cost more than they give
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    configure_logging(service)
    settings = Settings()
    asyncio.run(serve_until_stopped(build(settings)))
