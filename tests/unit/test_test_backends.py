"""Which database and broker the suite uses: a URL given, containers on a Docker engine, or the local ones."""
from __future__ import annotations

from tests.support.containers import choose, docker_engine_answers


def test_a_url_in_the_environment_wins():
    assert choose("mongo", {"CPCS_TEST_MONGO_URL": "mongodb://db:27017"}, engine_answers=True) == "url"
    assert choose("amqp", {"CPCS_TEST_AMQP_URL": "amqp://b/"}, engine_answers=False) == "url"


def test_containers_when_an_engine_answers_unless_turned_off():
    assert choose("mongo", {}, engine_answers=True) == "container"
    assert choose("amqp", {"CPCS_TEST_CONTAINERS": "off"}, engine_answers=True) == "local"
    assert choose("mongo", {}, engine_answers=False) == "local"


def test_no_engine_behind_docker_host_means_the_local_servers(monkeypatch):
    from tests.support.servers import free_port

    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")  # nothing listens there
    assert docker_engine_answers(timeout_s=1) is False
