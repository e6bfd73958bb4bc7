"""Lightcurve's plot requests over the real broker: a request reaches the plot queue, the answer reaches
the process that asked (and only the waiter of that observation), and no answer is a bounded wait."""
from __future__ import annotations

import asyncio

from services.lightcurve.plots import PlotRequests
from shared.contracts import PlotDeclinedV1, PlotRenderedV1, PlotRequestedV1
from shared.messaging import Broker


async def test_the_answer_reaches_the_waiter_of_its_observation_and_no_answer_is_a_bounded_wait(amqp_url, unique_name):
    asking, drawing = Broker(amqp_url, unique_name), Broker(amqp_url, unique_name)
    await asking.start()
    await drawing.start()
    seen: list[str] = []

    async def draw(message: PlotRequestedV1):
        seen.append(message.observation_id)
        if message.observation_id.startswith("a"):
            return [PlotRenderedV1(observation_id=message.observation_id, status="calibrated")]
        if message.observation_id.startswith("b"):
            return [PlotDeclinedV1(observation_id=message.observation_id, reason="no calibration of it is kept")]
        return []  # a plot queue that never answers (calibration busy or down)

    try:
        await drawing.subscribe(f"{unique_name}.calibration.plots", {"plot.requested.v1": draw})
        requests = PlotRequests(asking, wait_s=1.0)
        await requests.start()
        rendered, declined, silent = await asyncio.gather(requests.ask("a" * 32), requests.ask("b" * 32),
                                                          requests.ask("c" * 32))
        assert isinstance(rendered, PlotRenderedV1) and rendered.observation_id == "a" * 32
        assert isinstance(declined, PlotDeclinedV1) and declined.reason == "no calibration of it is kept"
        assert silent is None
        assert sorted(seen) == ["a" * 32, "b" * 32, "c" * 32]
        assert requests.waiting == {}  # nothing left behind, answered or not
    finally:
        await asking.close()
        await drawing.close()
