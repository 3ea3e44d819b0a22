"""Scripts tell outcomes apart by the exit status: a profile that does not exist (4), no worker
answering (5) and Kafka unreachable (3) each have their own, and ``--help`` lists them."""

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from streams.cli import main


class _NoProfiles(BaseHTTPRequestHandler):
    """A worker that has no profile for anyone (404 with the worker's error body)."""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = b'{"error": "no profile"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def empty_worker() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoProfiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def nowhere() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_not_found_and_worker_down_exit_differently(
    runner: CliRunner, empty_worker: str, nowhere: str
) -> None:
    missing = runner.invoke(main, ["get", "alice", "--url", empty_worker, "--token", "t"])
    down = runner.invoke(main, ["get", "alice", "--url", nowhere, "--token", "t"])
    assert (missing.exit_code, down.exit_code) == (4, 5), missing.output + down.output
    assert "no profile for 'alice'" in missing.output
    assert "cannot connect to" in down.output


def test_kafka_unreachable_exits_3_for_the_worker_too(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("PROFILE_STREAM_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("PROFILE_STREAM_DATA_DIR", str(tmp_path))
    result = runner.invoke(main, ["worker"])
    assert result.exit_code == 3, result.output
    assert "cannot reach Kafka at 127.0.0.1:1" in result.output


def test_the_help_lists_every_exit_status(runner: CliRunner) -> None:
    text = runner.invoke(main, ["--help"]).output
    for line in (
        "0  ok",
        "2  a usage error",
        "3  Kafka unreachable",
        "4  not found",
        "5  no worker",
    ):
        assert line in text
