"""``profile-stream get`` when no worker answers: one clear line, quickly, never a traceback."""

import functools
import socket
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

import streams.client
from streams.cli import main


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_get_with_no_worker_listening_says_so_in_one_line_at_once(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    monkeypatch.setenv("PROFILE_STREAM_WEB_PORT", str(closed_port))
    started = time.monotonic()
    result = runner.invoke(main, ["get", "alice"])
    assert time.monotonic() - started < 2
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert f"cannot connect to http://127.0.0.1:{closed_port}/profiles/alice" in line
    assert "PROFILE_STREAM_WEB_HOST" in line and "PROFILE_STREAM_WEB_PORT" in line
    assert "--url" in line

    by_url = runner.invoke(main, ["get", "alice", "--url", f"http://127.0.0.1:{closed_port}"])
    assert by_url.exit_code == 1 and "check --url" in by_url.output


def test_get_from_a_worker_that_hangs_says_so_in_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, hanging_port: int
) -> None:
    quick = functools.partial(streams.client.get_profile, timeout_s=0.3)
    monkeypatch.setattr(streams.client, "get_profile", quick)
    result = runner.invoke(main, ["get", "a/b?c", "--url", f"http://127.0.0.1:{hanging_port}"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line == (
        f"Error: http://127.0.0.1:{hanging_port}/profiles/a%2Fb%3Fc accepted the connection but "
        "did not answer within 0.3s; is the worker overloaded or stuck?"
    )
