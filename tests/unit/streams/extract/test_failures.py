"""Each way of not reaching the model is named as what it is, with the setting to check.

The requests go through the real SDK and its aiohttp transport to sockets on this host, so
the test follows what the SDK really raises (it reports all of these as a timeout).
"""

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import openai
import pytest
from openai import AsyncOpenAI, DefaultAioHttpClient

from streams.extract.failures import describe_transport_failure


async def _failure(base_url: str, timeout_s: float) -> str:
    client = AsyncOpenAI(
        api_key="unused",
        base_url=base_url,
        timeout=timeout_s,
        max_retries=0,
        http_client=DefaultAioHttpClient(),
    )
    try:
        with pytest.raises(openai.APIConnectionError) as caught:
            await client.post("/chat/completions", content=b"{}", cast_to=object)
    finally:
        await client.close()
    return describe_transport_failure(caught.value, base_url, timeout_s)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on exit: nobody listens there


@pytest.fixture
def silent_port() -> Iterator[int]:
    # Accepts connections (the kernel's backlog) and never answers.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.fixture
async def tls_port() -> AsyncIterator[int]:
    # A server that talks plain text where the client expects TLS.
    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def test_a_refused_connection_is_not_called_a_timeout(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/v1"
    said = await _failure(url, 5.0)
    assert said.startswith(f"connection refused by 127.0.0.1:{closed_port}")
    assert "PROFILE_STREAM_OPENAI_BASE_URL" in said and url in said
    assert "within" not in said


async def test_an_unknown_host_is_named() -> None:
    said = await _failure("http://no-such-host.invalid/v1", 5.0)
    assert said.startswith("cannot resolve the model host no-such-host.invalid")
    assert "PROFILE_STREAM_OPENAI_BASE_URL" in said


async def test_a_silent_server_is_a_timeout_naming_its_setting(silent_port: int) -> None:
    said = await _failure(f"http://127.0.0.1:{silent_port}/v1", 0.3)
    assert said.startswith(f"no answer from 127.0.0.1:{silent_port} within 0.3s")
    assert "PROFILE_STREAM_LLM_TIMEOUT_S" in said


async def test_https_to_a_plain_server_is_a_tls_failure(tls_port: int) -> None:
    said = await _failure(f"https://127.0.0.1:{tls_port}/v1", 5.0)
    assert said.startswith(f"TLS with the model endpoint 127.0.0.1:{tls_port} failed")
