"""The fake model, scripted for the two-user dataset of ``tests.fakes.evaluation``."""

from collections.abc import AsyncIterator

import pytest

from tests.fakes.evaluation import script
from tests.fakes.llm_server import FakeLLM


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    server = FakeLLM()
    await server.start()
    script(server)
    yield server
    await server.stop()
