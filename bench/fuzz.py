"""The fuzz stage at scale: ``--cases`` (default 20,000) seeded malformed inputs over HTTP and AMQP against a
live stack (every service a process, on the local RabbitMQ and an embedded nx-27017 of its own), then
schemathesis over the OpenAPI document. Prints the tally, the 5xx count and the seconds; exits 1 on any 5xx,
unanswered case or answer the document does not give.

    .venv/bin/python bench/fuzz.py --cases 20000 --seed 7 [--examples 25] [--no-schemathesis]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from tests.fuzz.cases import Context, amqp_cases, http_cases  # noqa: E402
from tests.fuzz.runner import Tally, run_amqp, run_http, run_schemathesis  # noqa: E402
from tests.fuzz.stack import live_stack  # noqa: E402
from tests.support.servers import EmbeddedMongo, amqp_url_from_env  # noqa: E402


async def main(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="cpcs-fuzz-"))
    (folder / "mongo").mkdir()
    mongo = EmbeddedMongo(folder / "mongo")
    mongo.start()
    started = time.monotonic()
    try:
        name = "fz" + uuid.uuid4().hex[:10]
        async with live_stack(mongo.url, amqp_url_from_env(), name, folder) as stack:
            ready = time.monotonic()
            ctx = Context(event=stack.demo["event"], token=stack.demo["token"],
                          admin_token=stack.demo["admin_token"], catalogue=stack.catalogue)
            tally = Tally()
            n_amqp = args.cases // 5
            await run_http(stack.url, http_cases(args.seed, args.cases - n_amqp, ctx), tally,
                           concurrency=args.concurrency)
            await run_amqp(stack.amqp_url, stack.exchange, amqp_cases(args.seed, n_amqp, ctx), tally,
                           timeout_s=max(90, n_amqp / 20))
            if not args.no_schemathesis:
                await asyncio.to_thread(run_schemathesis, stack.url, ctx, tally, seed=args.seed,
                                        max_examples=args.examples)
            took = time.monotonic() - ready
            dead = stack.dead()
            consumers = await stack.consumers()
            print(tally.line(took))
            print(f"seed {args.seed}; stack started in {ready - started:.0f} s; statuses: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(tally.statuses.items(), key=str)))
            for line in (tally.server_errors + tally.no_answer + tally.nonconforming)[:50]:
                print("  " + line)
            if tally.server_errors or tally.no_answer:
                print(stack.log_errors())
            print(f"processes exited: {dead or 'none'}; queues without a consumer: "
                  f"{[q for q, n in consumers.items() if n == 0] or 'none'}")
            print(f"5xx: {len(tally.server_errors)}")
            bad = tally.server_errors or tally.no_answer or tally.nonconforming or dead or not all(consumers.values())
            return 1 if bad else 0
    finally:
        mongo.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000, help="generated cases (a fifth of them AMQP)")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--examples", type=int, default=25, help="schemathesis examples per operation and mode")
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--no-schemathesis", action="store_true")
    sys.exit(asyncio.run(main(parser.parse_args())))
