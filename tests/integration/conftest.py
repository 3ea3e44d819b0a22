"""Session services (Kafka, Redis, the fake model) and per-test workers and topics.

A missing service fails the run: `make test` starts them, and a green run that never
touched Kafka would prove nothing.
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient

from tests.fakes.llm_server import FakeLLM
from tests.support import clean_environ, delete_topics

from .harness import (
    ADMIN_TOKEN,
    BOOTSTRAP,
    PARTITIONS,
    READ_TOKEN,
    REDIS_URL,
    Kafka,
    Names,
    WorkerProcess,
    free_port,
)

logger = logging.getLogger(__name__)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
async def services() -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10_000)
    try:
        await admin.start()
        await admin.list_topics()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Kafka does not answer at {BOOTSTRAP} ({exc!r}); run `make up` first")
    finally:
        await admin.close()
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Redis does not answer at {REDIS_URL} ({exc!r}); run `make up` first")
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
async def llm_server() -> AsyncIterator[FakeLLM]:
    server = FakeLLM()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def fake_llm(llm_server: FakeLLM) -> FakeLLM:
    """The session's fake model, with this test's script only."""
    llm_server.rules.clear()
    llm_server.requests.clear()
    llm_server.latency = None
    return llm_server


@pytest.fixture
async def names() -> AsyncIterator[Names]:
    names = Names.unique("it", partitions=PARTITIONS)
    yield names
    # After the test's workers have stopped (their fixtures depend on this one). Housekeeping
    # only: a broker slow to answer leaves the topics to the next `make down --wipe`.
    try:
        await delete_topics(names.prefix)
    except Exception as exc:  # noqa: BLE001
        logger.warning("topics of %s not deleted: %r", names.prefix, exc)


@pytest.fixture
async def kafka(services: None) -> AsyncIterator[Kafka]:
    client = Kafka()
    await client.start()
    yield client
    await client.stop()


StartWorker = Callable[..., Awaitable[WorkerProcess]]


@pytest.fixture
async def start_worker(
    services: None,
    names: Names,
    fake_llm: FakeLLM,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[StartWorker]:
    """Start workers of this test's app; each gets its own port, data dir and log."""
    started: list[WorkerProcess] = []
    guarantee = request.config.getoption("--processing-guarantee")
    chosen = {"PROFILE_STREAM_PROCESSING_GUARANTEE": guarantee} if guarantee else {}

    async def start(index: int = 0, ready: bool = True, **extra: str) -> WorkerProcess:
        port = free_port()
        env = clean_environ() | (
            names.env()
            | {
                "PROFILE_STREAM_KAFKA_BOOTSTRAP": BOOTSTRAP,
                "PROFILE_STREAM_REDIS_URL": REDIS_URL,
                "PROFILE_STREAM_WEB_PORT": str(port),
                "PROFILE_STREAM_DATA_DIR": str(tmp_path / f"worker-{index}"),
                "PROFILE_STREAM_READ_TOKENS": READ_TOKEN,
                "PROFILE_STREAM_ADMIN_TOKENS": ADMIN_TOKEN,
                "PROFILE_STREAM_EXTRACTOR": "openai",
                "OPENAI_BASE_URL": fake_llm.url,
                "OPENAI_API_KEY": "test-key",
                "PROFILE_STREAM_LLM_TIMEOUT_S": "2",
                "PROFILE_STREAM_LLM_BACKOFF_S": "0.05",
                "PROFILE_STREAM_LLM_BACKOFF_MAX_S": "0.2",
                # Each batch extracted as it comes: the tests of buffers set their triggers.
                "PROFILE_STREAM_FLUSH_IDLE_S": "0",
            }
            | chosen
            | extra
        )
        worker = WorkerProcess(env, tmp_path / f"worker-{index}.log", port).start()
        started.append(worker)
        if ready:
            await worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()
