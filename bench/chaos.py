"""Chaos bench: nothing lost, ever.

Its own exchange, its own nx-27017 database and its OWN RabbitMQ node (other ports; the shared broker on
5672 is never stopped), all five services as processes; N distinct real uploads (variants of the demo
catalogue, for the demo event) from 4 clients that retry on 503/429 per Retry-After, while each service is
killed with SIGKILL in turn (and started again), the broker node restarts and the database stops for
--db-stop-s seconds. Prints sent / acknowledged / on the light curve / lost / duplicated / stuck (goal
N/N/N/0/0/0) and the load.

    PYTHONPATH=. python bench/chaos.py --uploads 1000 --db-stop-s 60
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services import launcher  # noqa: E402
from tests.support.chaos import Chaos, workdir  # noqa: E402
from tests.support.rabbit_node import RabbitNode  # noqa: E402


async def bench(uploads: int, db_stop_s: float, settle_s: float, keep: bool) -> int:
    folder = workdir()
    node = RabbitNode()
    await asyncio.to_thread(node.start)
    chaos = Chaos(folder, node.url, uploads=uploads, clients=4)

    async def restart_broker() -> None:
        print("  broker node: stop_app")
        await asyncio.to_thread(node.stop_app)
        await asyncio.sleep(5)
        await asyncio.to_thread(node.start_app)
        print("  broker node: start_app")

    events = [(10.0 + 15.0 * i, lambda name=name: chaos.kill(name)) for i, name in enumerate(launcher.SERVICES)]
    events += [(10.0 + 15.0 * len(launcher.SERVICES), restart_broker),
               (30.0 + 15.0 * len(launcher.SERVICES), lambda: chaos.stop_database(db_stop_s))]
    try:
        await chaos.start()
        tally = await chaos.run(events, settle_s=settle_s)
    finally:
        chaos.close()
        await asyncio.to_thread(node.stop)
    load = os.getloadavg()
    print(f"{tally.line()}; {chaos.restarts} restarts by the supervisor; "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for refusal in tally.refused[:10]:
        print("  refused:", refusal)
    ok = (tally.acknowledged == tally.on_curve == tally.sent == uploads and not (tally.lost or tally.duplicated
                                                                                   or tally.stuck))
    if ok and not keep:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"  logs and database kept in {folder}")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=1000)
    parser.add_argument("--db-stop-s", type=float, default=60.0)
    parser.add_argument("--settle-s", type=float, default=600.0,
                        help="after the last upload, how long to wait for every outcome (the bound of the run)")
    parser.add_argument("--keep", action="store_true", help="keep the logs and the database")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(bench(args.uploads, args.db_stop_s, args.settle_s, args.keep)))


if __name__ == "__main__":
    main()
