"""The scripted OpenAI-compatible server the model client's tests talk to (an HTTP server on
this host, no other service)."""

from collections.abc import AsyncIterator

import pytest

from tests.fakes.llm_server import FakeLLM


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    server = FakeLLM()
    await server.start()
    yield server
    await server.stop()
