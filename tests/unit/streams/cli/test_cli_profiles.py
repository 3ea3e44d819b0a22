"""The commands that call a worker (``get``, ``get --prompt``, ``correct``, ``forget``) when
none answers: one clear line naming the URL and what to check, within 2 s, never a traceback;
and what they parse before calling one."""

import functools
import socket
import time
from collections.abc import Iterator
from importlib.metadata import version

import click
import pytest
from click.testing import CliRunner

import streams.client
from streams.cli import main
from streams.cli.profiles import _operations, _print_profile, assignment


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
    assert result.exit_code == 5 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert f"cannot connect to http://127.0.0.1:{closed_port}/profiles/alice" in line
    assert "PROFILE_STREAM_WEB_HOST" in line and "PROFILE_STREAM_WEB_PORT" in line
    assert "--url" in line

    by_url = runner.invoke(main, ["get", "alice", "--url", f"http://127.0.0.1:{closed_port}"])
    assert by_url.exit_code == 5 and "check --url" in by_url.output


def test_get_from_a_worker_that_hangs_says_so_in_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, hanging_port: int
) -> None:
    quick = functools.partial(streams.client.get_profile, timeout_s=0.3)
    monkeypatch.setattr(streams.client, "get_profile", quick)
    result = runner.invoke(main, ["get", "a/b?c", "--url", f"http://127.0.0.1:{hanging_port}"])
    assert result.exit_code == 5 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line == (
        f"Error: http://127.0.0.1:{hanging_port}/profiles/a%2Fb%3Fc accepted the connection but "
        "did not answer within 0.3s; is the worker overloaded or stuck?"
    )


@pytest.fixture
def unanswering_port() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new connection attempts, as a host
    that is down (or a firewall) does, so a connect waits until the client gives up."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port: int = server.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        yield port
        for filler in fillers:
            filler.close()


WORKER_CALLS = [
    ["get", "alice"],
    ["get", "alice", "--prompt"],
    ["correct", "alice", "--set", "name=Ann", "--lock", "name"],
    ["forget", "alice"],
]


@pytest.mark.parametrize("args", WORKER_CALLS, ids=lambda a: " ".join(a[:1] + a[2:3]))
@pytest.mark.parametrize("port_kind", ["closed", "unanswering"])
def test_every_worker_command_says_in_one_line_within_2s_that_none_answers(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    closed_port: int,
    unanswering_port: int,
    args: list[str],
    port_kind: str,
) -> None:
    port = closed_port if port_kind == "closed" else unanswering_port
    monkeypatch.setenv("PROFILE_STREAM_WEB_PORT", str(port))
    monkeypatch.setenv("PROFILE_STREAM_ADMIN_TOKENS", "admin")
    started = time.monotonic()
    result = runner.invoke(main, args)
    assert time.monotonic() - started < 2
    assert result.exit_code == 5 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: cannot connect to http://127.0.0.1:{port}/profiles/alice")
    reason = "connection refused" if port_kind == "closed" else "no connection within 1.2s"
    assert f"({reason}); is a worker listening there?" in line
    assert "`profile-stream worker`" in line and "PROFILE_STREAM_WEB_PORT" in line


def test_version_is_the_installed_distributions(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert (result.exit_code, result.output) == (
        0,
        f"profile-stream, version {version('profile-stream')}\n",
    )


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("name=Ann", ("name", "Ann")), ("note=a=b", ("note", "a=b")), (" seats =12", ("seats", "12"))],
)
def test_an_assignment_splits_at_the_first_equals_sign(text: str, parsed: tuple[str, str]) -> None:
    assert assignment(text) == parsed


@pytest.mark.parametrize("text", ["name", "=Ann", " =x"])
def test_an_assignment_without_a_field_is_refused(text: str) -> None:
    with pytest.raises(click.BadParameter, match="is not FIELD=VALUE"):
        assignment(text)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["correct", "alice"], "nothing to correct"),
        (["correct", "alice", "--set", "name"], "'name' is not FIELD=VALUE"),
        (["get", "alice", "--prompt", "--kind", "team"], "--prompt renders a user's profile"),
    ],
)
def test_a_command_that_says_nothing_to_do_is_a_usage_error_before_any_call(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    closed_port: int,
    args: list[str],
    words: str,
) -> None:
    monkeypatch.setenv("PROFILE_STREAM_WEB_PORT", str(closed_port))
    monkeypatch.setenv("PROFILE_STREAM_ADMIN_TOKENS", "admin")
    result = runner.invoke(main, args)
    assert result.exit_code == 2 and words in result.output
    assert "cannot connect" not in result.output


def _leaves(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaves(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


#: Commands whose stdout is not data: the worker's logs; import-locomo writes JSON lines already.
NO_JSON = {"worker", "import-locomo"}


def test_every_command_that_prints_data_takes_json() -> None:
    assert isinstance(main, click.Group)
    leaves = dict(_leaves(main))
    assert {"get", "correct", "forget", "dlq replay", "migrate", "send", "publish"} <= set(leaves)
    without = {
        name
        for name, command in leaves.items()
        if not any("--json" in p.opts for p in command.params if isinstance(p, click.Option))
    }
    assert without == NO_JSON


def test_a_field_set_more_than_once_is_one_set_of_all_its_values() -> None:
    ops = _operations(
        ("languages=English", "name=Ann", "languages=Basque"), ("note",), ("topics=x",), ()
    )
    assert ops == [
        {"field": "languages", "op": "set", "value": ["English", "Basque"]},
        {"field": "name", "op": "set", "value": "Ann"},
        {"field": "topics", "op": "add", "value": "x"},
        {"field": "note", "op": "unset"},
    ]


def test_get_says_when_messages_wait_in_the_buffer(capsys: pytest.CaptureFixture[str]) -> None:
    body = {
        "user_id": "alice",
        "version": 1,
        "schema": "UserProfile/v1",
        "profile": {"name": "Alice"},
        "locked": [],
        "freshness": {"buffered_messages": 2, "last_message_id": "m1", "last_message_at": None},
    }
    _print_profile(body)
    assert (
        "  buffered: 2 messages not extracted yet (POST .../refresh: now)"
        in capsys.readouterr().out
    )
    _print_profile(body | {"freshness": {"buffered_messages": 0}})
    assert "buffered" not in capsys.readouterr().out
