"""Process pools for CPU-bound science (never on the event loop), started warm."""
from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor


def _ready() -> bool:
    return True


def lower_priority() -> None:
    """For work that is never on the path of an answer (e.g. plots): yield the CPU to the rest."""
    os.nice(10)


async def process_pool(workers: int, *, initializer=None) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn"),
                               initializer=initializer)
    await asyncio.get_running_loop().run_in_executor(pool, _ready)
    return pool


async def run_in_pool(executor, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in the executor (a module-level function, so a spawned worker can import it)."""
    return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(fn, *args, **kwargs))
