"""Fixtures for the wire-client tests: a fake model server on a real loopback socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_servers import FakeServer


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    fake = FakeServer()
    await fake.start()
    yield fake
    await fake.stop()
