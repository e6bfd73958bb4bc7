"""Process pools for CPU-bound science (never on the event loop), started warm.

A worker dies with its service: killed with ``kill -9`` (or by the OOM killer) a service cannot stop its
pool, and the workers would live on, orphans holding memory and CPU. Each worker therefore asks Linux to
kill it when its parent goes (``PR_SET_PDEATHSIG``), and also watches its parent's pid from a thread
(``WATCH_INTERVAL_S``), the fallback where prctl is missing (not Linux) or does not fire (it follows the
thread that started the worker, not the process).
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1
#: How often a worker looks whether its parent is still there (the bound of the fallback).
WATCH_INTERVAL_S = 0.5


def _ready() -> bool:
    return True


def lower_priority() -> None:
    """For work that is never on the path of an answer (e.g. plots): yield the CPU to the rest."""
    os.nice(10)


def _die_with_parent_signal() -> bool:
    """Ask the kernel for SIGKILL when the parent exits (Linux); False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    """Exit the worker as soon as its parent is gone (it is then adopted: the parent pid changes)."""
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL_S)
    os._exit(1)


def _start_worker(parent_pid: int, initializer: Callable[[], object] | None) -> None:
    """Every worker's initializer: bound to its parent's life first, then the pool's own initializer."""
    _die_with_parent_signal()
    if os.getppid() != parent_pid:  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()
    if initializer is not None:
        initializer()


async def process_pool(workers: int, *, initializer=None) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn"),
                               initializer=functools.partial(_start_worker, os.getpid(), initializer))
    await asyncio.get_running_loop().run_in_executor(pool, _ready)
    return pool


async def run_in_pool(executor, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in the executor (a module-level function, so a spawned worker can import it)."""
    return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(fn, *args, **kwargs))
