"""Calibration plots on request: a plot not drawn yet is asked of calibration and waited for.

Calibration draws a plot at once only for an upload that shows it (``noPlot`` not set); any other is
drawn on its first view. ``/plots/{observation}.png`` then publishes ``plot.requested.v1`` and waits,
on this process's own queue, for ``plot.rendered.v1`` (the plot is stored: it is read and served) or
``plot.declined.v1`` (no calibration of that id is kept: 404 with the reason).
"""
from __future__ import annotations

import asyncio
import re

from shared.contracts import PlotDeclinedV1, PlotRenderedV1, PlotRequestedV1
from shared.messaging import Broker

#: How long a page's image waits for its plot to be drawn before it is told to try again.
PLOT_WAIT_S = 15.0
#: What an observation id looks like (ingest's ids are 32 hexadecimal digits); anything else is no plot.
OBSERVATION_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")

Answer = PlotRenderedV1 | PlotDeclinedV1


class PlotRequests:
    """Asks calibration for plots and hands each answer to whoever waits for that observation."""

    def __init__(self, broker: Broker, *, wait_s: float = PLOT_WAIT_S):
        self.broker, self.wait_s = broker, wait_s
        self.waiting: dict[str, list[asyncio.Future[Answer]]] = {}

    async def start(self) -> None:
        await self.broker.subscribe(None, {"plot.rendered.v1": self.on_answer, "plot.declined.v1": self.on_answer})

    async def on_answer(self, message: Answer) -> None:
        for future in self.waiting.pop(message.observation_id, []):
            if not future.done():
                future.set_result(message)

    async def ask(self, observation_id: str) -> Answer | None:
        """Calibration's answer for this observation's plot, or None when none came within ``wait_s``."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        waiters = self.waiting.setdefault(observation_id, [])
        waiters.append(future)
        try:  # waiting before asking: the answer cannot overtake the request
            await self.broker.publish(PlotRequestedV1(observation_id=observation_id))
            return await asyncio.wait_for(asyncio.shield(future), self.wait_s)
        except TimeoutError:
            return None
        finally:
            if future in waiters:
                waiters.remove(future)
            if not waiters and self.waiting.get(observation_id) is waiters:
                del self.waiting[observation_id]
