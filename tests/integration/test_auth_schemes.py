"""The REST API takes the token in the Authorization forms other tools send: Bearer, Token, token."""
from __future__ import annotations

import pytest

from tests.support.flows import demo_system

pytestmark = pytest.mark.integration


async def test_bearer_token_and_lowercase_token_schemes_are_accepted(mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        token = running.demo["token"]
        for i, header in enumerate((f"Bearer {token}", f"Token {token}", f"token {token}")):
            body = {"ivorn": f"ivo://auth-scheme-{i}", "ra": 10.0 + i, "dec": -5.0}
            async with running.http.post(f"{running.url}/api/v1/events", json=body,
                                         headers={"Authorization": header}) as response:
                assert response.status == 201, (header.split()[0], await response.text())
        async with running.http.post(f"{running.url}/api/v1/events", json={"ivorn": "ivo://x", "ra": 1, "dec": 1},
                                     headers={"Authorization": "Basic " + token}) as response:
            assert response.status == 401  # another scheme is not a token
