"""Process lifetime shared by every service: logging, signals, an orderly shutdown."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from pydantic_settings import BaseSettings

from shared import observability
from shared.settings import SettingsError, load

S = TypeVar("S", bound=BaseSettings)


def configure_logging(service: str, log_format: str = "text") -> None:
    """Text lines with the correlation id, or JSON lines (``CPCS_LOG_FORMAT=json``)."""
    observability.configure_logging(service, json_lines=log_format == "json")


async def serve_until_stopped(running: AbstractAsyncContextManager) -> None:
    """Enter the service's context, wait for SIGINT/SIGTERM, then leave it (closing everything)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with running:
        await stop.wait()


def read_settings(service: str, model: type[S]) -> S:
    """The service's own settings model from the environment; a refused setting or parameter ends the
    process (status 2) with one line naming it."""
    try:
        return load(model)
    except (SettingsError, ValueError) as exc:  # ValueError: a parameter or archive setting refused
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        logging.getLogger(service).error("settings refused: %s", message)
        print(f"{service}: settings refused: {message}", file=sys.stderr)
        raise SystemExit(2) from None


def run(service: str, model: type[S], build: Callable[[S], AbstractAsyncContextManager]) -> None:
    """Entry point body of every service: its own settings model read once, then served until a signal."""
    # one BLAS thread per process: on a small machine idle BLAS threads spinning cost more than they give
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    configure_logging(service)
    settings = read_settings(service, model)
    configure_logging(service, getattr(settings, "log_format", "text"))
    asyncio.run(serve_until_stopped(build(settings)))
