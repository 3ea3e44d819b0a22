"""Scripts tell outcomes apart by the exit status: a profile that does not exist (4), no worker
answering (5) and Kafka unreachable (3) each have their own, and ``--help`` lists them."""

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Its own process: a worker registers process-wide metrics that other tests read.
    env = dict(os.environ) | {
        "PROFILE_STREAM_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "PROFILE_STREAM_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed command
        [str(Path(sys.executable).with_name("profile-stream")), "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "cannot reach Kafka at 127.0.0.1:1" in done.stderr


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
