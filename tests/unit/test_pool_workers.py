"""A service killed with ``kill -9`` takes its process-pool workers with it: none is left an orphan. The
service is a real process making real pools; each worker's end is awaited through its pidfd (readable
when the process has ended), with a bound."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE = textwrap.dedent("""
    import asyncio
    from shared.pools import lower_priority, process_pool

    async def main():
        science = await process_pool(1)
        plots = await process_pool(1, initializer=lower_priority)
        print(*science._processes, *plots._processes, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="pidfds are Linux's")


def first_line(proc: subprocess.Popen, timeout_s: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    assert ready, "the service did not start its pools in time"
    return proc.stdout.readline()


def nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_the_workers_end_when_their_service_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", SERVICE], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    ends: list[int] = []
    try:
        workers = [int(pid) for pid in first_line(proc, 60).split()]
        assert len(workers) == 2 and proc.pid not in workers
        assert nice_of(workers[1]) - nice_of(workers[0]) == 10  # the pool's own initializer still runs
        ends += [os.pidfd_open(pid) for pid in workers]
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        remaining = set(ends)
        while remaining:  # each pidfd becomes readable once its worker has ended
            ready, _, _ = select.select(list(remaining), [], [], 10)
            assert ready, f"workers still alive 10 s after their service was killed: {workers}"
            remaining -= set(ready)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for fd in ends:  # a failed run leaves no orphans behind either (the pidfd names that very process)
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.close(fd)
