"""Real MongoDB and RabbitMQ in containers (testcontainers) when a Docker engine answers.

The suite's session fixtures choose, in this order: a URL in the environment (``CPCS_TEST_MONGO_URL``,
``CPCS_TEST_AMQP_URL``); containers (``mongo:7``, ``rabbitmq:3.13``) when a Docker engine answers and
``CPCS_TEST_CONTAINERS`` is not ``off``; else the embedded nx-27017 and the local RabbitMQ on 5672.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

MONGO_IMAGE = "mongo:7"
RABBITMQ_IMAGE = "rabbitmq:3.13"


def docker_engine_answers(timeout_s: float = 2.0) -> bool:
    """Whether a Docker engine answers a ping (the client alone is not enough)."""
    try:
        import docker

        client = docker.from_env(timeout=int(max(1, timeout_s)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no permission: no engine to use
        return False


def choose(kind: str, environ: Mapping[str, str], engine_answers: bool) -> str:
    """``"url"``, ``"container"`` or ``"local"`` for ``kind`` ``"mongo"`` or ``"amqp"``."""
    if environ.get(f"CPCS_TEST_{kind.upper()}_URL"):
        return "url"
    if environ.get("CPCS_TEST_CONTAINERS", "auto").lower() != "off" and engine_answers:
        return "container"
    return "local"


@contextmanager
def mongo_container() -> Iterator[str]:
    from testcontainers.community.mongodb import MongoDbContainer

    with MongoDbContainer(MONGO_IMAGE) as container:
        yield container.get_connection_url()


@contextmanager
def rabbitmq_container() -> Iterator[str]:
    from testcontainers.community.rabbitmq import RabbitMqContainer

    with RabbitMqContainer(RABBITMQ_IMAGE) as container:
        params = container.get_connection_params()
        credentials = params.credentials
        yield f"amqp://{credentials.username}:{credentials.password}@{params.host}:{params.port}/"


def engine_state() -> bool:
    """Asked once per session (the answer is kept in the environment for the worker processes)."""
    cached = os.environ.get("CPCS_TEST_DOCKER_ENGINE")
    if cached is None:
        cached = "1" if docker_engine_answers() else "0"
        os.environ["CPCS_TEST_DOCKER_ENGINE"] = cached
    return cached == "1"
