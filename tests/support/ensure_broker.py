"""Before the suite: make sure the real RabbitMQ the tests talk to is running (start it if needed)."""
from __future__ import annotations

import os
from urllib.parse import urlparse

from services.launcher import ensure_rabbitmq

if __name__ == "__main__":
    url = urlparse(os.environ.get("CPCS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    print(f"RabbitMQ on {url.hostname}:{url.port or 5672}: {ensure_rabbitmq(url.hostname, url.port or 5672)}")
