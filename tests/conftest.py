"""Session-wide fixtures: the real database server and broker the tests talk to."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):  # idle BLAS threads spinning slow a small machine
    os.environ.setdefault(_var, "1")
# after the thread limits: what is imported from here on (numpy among it) reads them once, at import
from tests.support import containers  # noqa: E402
from tests.support.servers import EmbeddedMongo, amqp_url_from_env  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The third-party sample files beside the project (not copied into it: see tests/README)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"sample data folder {SHARED_DATA} is not beside the project")
    return SHARED_DATA


def pytest_report_header(config) -> str:
    engine = containers.engine_state()
    return (f"database: {containers.choose('mongo', os.environ, engine)}, broker: "
            f"{containers.choose('amqp', os.environ, engine)} (url = from the environment, container = "
            f"testcontainers on the Docker engine, local = nx-27017 and RabbitMQ on 5672)")


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory) -> str:
    """A MongoDB-protocol server: CPCS_TEST_MONGO_URL if set; else real MongoDB in a container when a Docker
    engine answers; else an embedded nx-27017 on a free port."""
    choice = containers.choose("mongo", os.environ, containers.engine_state())
    if choice == "url":
        yield os.environ["CPCS_TEST_MONGO_URL"]
        return
    if choice == "container":
        with containers.mongo_container() as url:
            yield url
        return
    server = EmbeddedMongo(tmp_path_factory.mktemp("mongo"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The broker: CPCS_TEST_AMQP_URL if set; else RabbitMQ in a container when a Docker engine answers; else
    the local RabbitMQ on 5672."""
    if containers.choose("amqp", os.environ, containers.engine_state()) == "container":
        with containers.rabbitmq_container() as url:
            yield url
        return
    yield amqp_url_from_env()


@pytest.fixture
def unique_name() -> str:
    """A fresh name for a database, exchange or queue, so tests never share state."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
async def mongo_db(mongo_url, unique_name):
    """A fresh database on the real server, dropped afterwards."""
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    db = client[unique_name]
    try:
        yield db
    finally:
        await client.drop_database(unique_name)
        await client.close()
