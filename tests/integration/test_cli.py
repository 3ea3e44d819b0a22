"""What users touch, end to end: ``profile-stream`` subprocesses against a real worker, Kafka
and the scripted model."""

import asyncio
import os
import pty
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.fakes.llm_server import FakeLLM, Fault
from tests.support import clean_environ, free_port

from .conftest import StartWorker
from .harness import (
    ADMIN_TOKEN,
    BOOTSTRAP,
    READ_TOKEN,
    Kafka,
    Names,
    WorkerProcess,
    decode,
    message,
)

EXE = str(Path(sys.executable).with_name("profile-stream"))
BINARY = b"\xff\xfe binary"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def cli_env(names: Names, worker: WorkerProcess | None = None) -> dict[str, str]:
    env = (
        clean_environ()
        | names.env()
        | {
            "PROFILE_STREAM_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "PROFILE_STREAM_READ_TOKENS": READ_TOKEN,
            "PROFILE_STREAM_ADMIN_TOKENS": ADMIN_TOKEN,
        }
    )
    if worker is not None:
        env["PROFILE_STREAM_WEB_PORT"] = str(worker.port)
    return env


async def cli(env: dict[str, str], *args: str, stdin: bytes = b"", timeout: float = 90) -> Run:
    """Run the command without blocking the loop (the fake model answers on it)."""
    proc = await asyncio.create_subprocess_exec(
        EXE,
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(
            f"profile-stream {' '.join(args)} still running after {timeout}s"
        ) from None
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def cli_on_terminal(env: dict[str, str], *args: str, timeout: float = 120) -> Run:
    """Run the command with its stderr on a pseudo-terminal, as a person at a shell sees it."""
    leader, follower = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        EXE,
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    loop = asyncio.get_running_loop()

    def drain() -> bytes:
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the command closed the terminal
                return seen
            if not chunk:
                return seen
            seen += chunk

    try:
        reading = loop.run_in_executor(None, drain)
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        err = await asyncio.wait_for(reading, 10)
    finally:
        os.close(leader)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def seed_script(fake: FakeLLM) -> None:
    fake.on(
        "I'm Alice from California",
        {"field": "name", "op": "set", "value": "Alice"},
        {"field": "location", "op": "set", "value": "California"},
    )
    fake.on("I speak Spanish too", {"field": "languages", "op": "add", "value": "Spanish"})


async def test_a_cli_session_send_tail_get_forget_history(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    seed_script(fake_llm)
    worker = await start_worker()
    env = cli_env(names, worker)

    first = await cli(env, "send", "--user", "alice", "I'm Alice from California", "--json")
    # Messages close together may be applied as one version; two versions are wanted here.
    await kafka.read(names.output, lambda r: len(r) >= 1)
    second = await cli(env, "send", "--user", "alice", "I speak Spanish too")
    assert (first.code, second.code) == (0, 0), first.err + second.err
    sent = orjson.loads(first.out)
    assert (sent["topic"], sent["message"]["content"]) == (names.input, "I'm Alice from California")
    ids = [sent["message"]["message_id"], second.out.strip()]

    tailed = await cli(env, "tail", "--max", "2", "--from-beginning", "--timeout", "60")
    assert tailed.code == 0, tailed.err
    assert tailed.lines == [
        f"alice v1 updated name,location  from {ids[0]}",
        f"alice v2 updated languages  from {ids[1]}",
    ]

    got = await cli(env, "get", "alice")
    assert got.code == 0, got.err
    assert got.lines[0].startswith("alice (version 2, ")
    assert "  name: Alice" in got.lines and "  languages: Spanish" in got.lines

    for token, status in (("wrong-token", "(401)"), (READ_TOKEN, "(403)")):
        refused = await cli(env, "forget", "alice", "--token", token)
        assert refused.code == 1 and status in refused.err, refused.err
    forgot = await cli(env, "forget", "alice", "--json")
    assert forgot.code == 0, forgot.err
    answer = orjson.loads(forgot.out)
    assert (answer["status"], answer["user_id"]) == ("accepted", "alice")
    command_id = answer["command_id"]
    await kafka.read(names.output, lambda r: len(r) >= 3)

    gone = await cli(env, "get", "alice")
    assert gone.code == 4 and "no profile for 'alice'" in gone.err  # not found

    history = await cli(env, "history", "alice")
    assert history.code == 0, history.err
    assert history.lines == [
        f"v1 updated name,location  from {ids[0]}",
        f"v2 updated languages  from {ids[1]}",
        f"v3 deleted -  from {command_id}",
    ]
    raw = await cli(env, "history", "alice", "--json")
    assert [orjson.loads(line)["event_id"] for line in raw.lines] == [
        "alice:1",
        "alice:2",
        "alice:3",
    ]

    quiet = await cli(env, "tail", "--timeout", "1")
    assert quiet.code == 0 and quiet.out == "" and "0 events" in quiet.err


async def test_publish_sends_the_good_lines_and_numbers_the_bad_ones(
    kafka: Kafka, names: Names, tmp_path: Path
) -> None:
    bad = {10: b"{not json", 50: orjson.dumps(message("u1", "")), 77: b'{"user_id": "u1"}'}
    lines = [
        bad.get(n) or orjson.dumps(message(f"user-{n % 7}", f"line {n}")) for n in range(1, 101)
    ]
    source = tmp_path / "messages.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")

    result = await cli(cli_env(names), "publish", str(source))

    assert result.code == 1, result.err
    assert result.lines[0] == f"sent 97 messages to {names.input}"
    assert result.lines[1] == "rejected 3 lines:"
    assert [line.split(":")[0].strip() for line in result.lines[2:]] == [
        "line 10",
        "line 50",
        "line 77",
    ]
    assert "not_json" in result.lines[2] and "invalid_message" in result.lines[3]
    records = await kafka.read(names.input, lambda r: len(r) >= 97)
    assert sum((await kafka.end_offsets(names.input)).values()) == 97
    assert all(r.key == orjson.loads(r.value)["user_id"].encode() for r in records)

    assert result.err == ""  # a short run on no terminal: no progress in the logs

    piped = await cli(cli_env(names), "publish", "-", "--json", stdin=lines[0] + b"\n" + bad[10])
    assert piped.code == 1, piped.err
    summary = orjson.loads(piped.out)
    assert (summary["sent"], summary["topic"]) == (1, names.input)
    [rejected] = summary["rejected"]
    assert (rejected["line"], rejected["code"]) == (2, "not_json") and rejected["reason"]


@pytest.mark.parametrize("dry_run", [True, False])
async def test_dead_letters_are_listed_shown_and_replayed_after_a_fix(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM, dry_run: bool
) -> None:
    fake_llm.on(
        "I live in Lisbon",
        {"field": "location", "op": "set", "value": "Lisbon"},
        faults=[Fault(status=400, times=1)],  # the model refuses once: dead-lettered
    )
    worker = await start_worker()
    env = cli_env(names, worker)
    await kafka.send(names.input, message("dave", "I live in Lisbon"))
    await kafka.send(names.input, BINARY, key=b"erin")
    await kafka.read(
        names.dlq,
        lambda r: {d["reason_code"] for d in decode(r)} >= {"extraction_failed", "not_utf8"},
    )

    listed = await cli(env, "dlq", "list")
    assert listed.code == 0, listed.err
    as_json = [orjson.loads(line) for line in (await cli(env, "dlq", "list", "--json")).lines]
    assert [(x["id"], x["reason_code"]) for x in as_json] == [
        (line.split()[0], line.split()[1]) for line in listed.lines
    ]
    by_code = {line.split()[1]: line for line in listed.lines}
    assert set(by_code) == {"extraction_failed", "not_utf8"}, listed.out
    assert "user=dave" in by_code["extraction_failed"]
    assert f"from {names.input}/" in by_code["not_utf8"]
    only = await cli(env, "dlq", "list", "--reason", "not_utf8")
    assert only.lines == [by_code["not_utf8"]]

    shown = await cli(env, "dlq", "show", by_code["not_utf8"].split()[0])
    assert shown.code == 0, shown.err
    shown_json = orjson.loads(
        (await cli(env, "dlq", "show", by_code["not_utf8"].split()[0], "--json")).out
    )
    assert (shown_json["key_b64"], shown_json["source_topic"]) == ("ZXJpbg==", names.input)
    assert "key:         erin" in shown.lines
    assert f"value:       (not UTF-8, 9 bytes, hex) {BINARY.hex()}" in shown.lines

    args = ["dlq", "replay", "--reason", "extraction_failed"] + (["--dry-run"] if dry_run else [])
    before = sum((await kafka.end_offsets(names.input)).values())
    replayed = await cli(env, *args, "--json")
    assert replayed.code == 0, replayed.err
    assert orjson.loads(replayed.out) == {
        "dry_run": dry_run,
        "topic": names.input,
        "replayed": [by_code["extraction_failed"].split()[0]],
        "held_back": [],
        "refused_truncated": [],
    }
    after = sum((await kafka.end_offsets(names.input)).values())
    if dry_run:
        assert after == before
        return
    assert after == before + 1
    events = await kafka.read(names.output, lambda r: len(r) >= 1)
    assert orjson.loads(events[0].value)["profile"]["location"] == "Lisbon"


async def test_an_operator_corrects_and_locks_fields_from_the_command_line(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    seed_script(fake_llm)
    fake_llm.on(
        "Actually I'm Alicia and I speak Spanish",
        {"field": "name", "op": "set", "value": "Alicia"},
        {"field": "languages", "op": "add", "value": "Spanish"},
    )
    worker = await start_worker()
    env = cli_env(names, worker)
    await kafka.send(names.input, message("alice", "I'm Alice from California"))
    await kafka.read(names.output, lambda r: len(r) >= 1)

    refused = await cli(env, "correct", "alice", "--set", "shoe_size=42")
    assert refused.code == 1 and refused.out == "", refused.err
    (line,) = refused.err.strip().splitlines()
    assert "answered 400" in line and "shoe_size" in line

    args = ["--set", "name=Ann", "--add", "languages=Basque", "--lock", "name", "--json"]
    corrected = await cli(env, "correct", "alice", *args)
    assert corrected.code == 0, corrected.err
    command_id = orjson.loads(corrected.out)["command_id"]
    events = decode(await kafka.read(names.output, lambda r: len(r) >= 2))
    assert events[1]["source_message_ids"] == [command_id]

    await kafka.send(names.input, message("alice", "Actually I'm Alicia and I speak Spanish"))
    await kafka.read(names.output, lambda r: len(r) >= 3)
    got = orjson.loads((await cli(env, "get", "alice", "--json")).out)
    profile = got["profile"]
    assert (profile["name"], profile["languages"], got["locked"]) == (
        "Ann",
        ["Basque", "Spanish"],
        ["name"],
    )
    shown = await cli(env, "get", "alice")
    assert "  locked: name" in shown.lines
    prompt = await cli(env, "get", "alice", "--prompt")
    assert prompt.lines == [
        "<User Profile>",
        "name: Ann",
        "languages: Basque, Spanish",
        "location: California",
        "</User Profile>",
    ]

    unlocked = await cli(env, "correct", "alice", "--unlock", "name")
    assert unlocked.code == 0, unlocked.err
    await kafka.read(names.output, lambda r: len(r) >= 4)
    assert orjson.loads((await cli(env, "get", "alice", "--json")).out)["locked"] == []


async def test_publishing_a_large_file_shows_count_rate_and_time_left_on_a_terminal(
    kafka: Kafka, names: Names, tmp_path: Path
) -> None:
    total = 60_000
    source = tmp_path / "large.jsonl"
    source.write_bytes(
        b"".join(orjson.dumps(message(f"user-{n % 50}", f"line {n}")) + b"\n" for n in range(total))
    )

    result = await cli_on_terminal(cli_env(names), "publish", str(source))

    assert result.code == 0, result.err
    assert result.out == f"sent {total} messages to {names.input}\n"  # stdout: the summary only
    updates = [u.strip().removesuffix("\x1b[K") for u in result.err.split("\r") if u.strip()]
    assert len(updates) >= 2, result.err
    assert any(f"of {total:,} lines (" in u and "lines/s, about" in u for u in updates), updates
    assert updates[-1].startswith(f"publish: {total:,} of {total:,} lines (100%), ")
    assert ", in " in updates[-1]
    assert sum((await kafka.end_offsets(names.input)).values()) == total


async def test_a_command_with_no_worker_to_ask_fails_in_one_line_within_2_seconds(
    names: Names,
) -> None:
    env = cli_env(names) | {"PROFILE_STREAM_WEB_PORT": str(free_port())}
    commands = (
        ["get", "alice"],
        ["correct", "alice", "--lock", "name"],
        ["flush", "alice"],
        ["forget", "alice"],
    )
    for args in commands:
        started = asyncio.get_running_loop().time()
        result = await cli(env, *args)
        assert asyncio.get_running_loop().time() - started < 2, args
        (line,) = result.err.strip().splitlines()
        assert result.code == 5 and "cannot connect to http://127.0.0.1:" in line, line
        assert "start one with `profile-stream worker`" in line
