"""The error policy: each error, where it is met, gets its decision. Only infrastructure failures
exit; a bug met by inputs dead-letters them, at admission and in a batch alike."""

import asyncio
import logging

import pytest

from streams import errors
from streams.errors import (
    BrokerUnavailable,
    ConfigError,
    ExtractionFailed,
    InvalidEvent,
    InvalidModelOutput,
    ModelUnavailable,
    ProfileNotFound,
    ProfileStreamError,
    Refused,
    SendRejected,
    ServiceError,
    TopicMissing,
)
from streams.pipeline import policy
from streams.pipeline.policy import (
    CRASH_EXIT_CODE,
    DeadLetter,
    Exit,
    Skip,
    Stage,
    decide,
    exit_for_redelivery,
    exit_on_batch_crash,
    undeliverable,
)

BOTH = (Stage.ADMISSION, Stage.BATCH)


@pytest.mark.parametrize("stage", BOTH)
def test_an_invalid_event_is_dead_lettered_with_its_code_and_user(stage: Stage) -> None:
    decision = decide(InvalidEvent("not_json", "not valid JSON", user_id="u1"), stage)
    assert decision == DeadLetter("not_json", "not valid JSON", user_id="u1")


@pytest.mark.parametrize("stage", BOTH)
def test_a_given_up_extraction_is_dead_lettered_with_its_attempts(stage: Stage) -> None:
    decision = decide(ExtractionFailed("model said 400", attempts=3), stage)
    assert decision == DeadLetter("extraction_failed", "model said 400", attempts=3)


@pytest.mark.parametrize("stage", BOTH)
@pytest.mark.parametrize(
    "exc",
    [
        BrokerUnavailable("down"),
        ModelUnavailable("429"),
        InvalidModelOutput("not json"),
        ServiceError("503"),
        ConnectionResetError("reset"),
        OSError("no route"),
        TimeoutError(),
    ],
    ids=repr,
)
def test_an_error_that_may_pass_exits_so_the_input_is_read_again(
    exc: BaseException, stage: Stage
) -> None:
    decision = decide(exc, stage)
    assert isinstance(decision, Exit) and repr(exc) in decision.reason


@pytest.mark.parametrize("stage", BOTH)
@pytest.mark.parametrize(
    "exc",
    [
        Refused("403", status=403),
        ConfigError("bad setting"),
        ProfileNotFound("user u1"),
        TopicMissing("no topic chat-x"),
        RuntimeError("bug in alice's secret"),
        KeyError("key-of-alice"),
        ValueError("alice's words"),
    ],
    ids=repr,
)
def test_a_bug_dead_letters_its_inputs_at_admission_and_in_a_batch(
    exc: Exception, stage: Stage
) -> None:
    decision = decide(exc, stage)
    assert isinstance(decision, DeadLetter) and decision.code == "internal_error"
    # The reason names the type, never the message (it may quote the input).
    assert type(exc).__name__ in decision.reason and str(exc) not in decision.reason


@pytest.mark.parametrize("stage", BOTH)
def test_a_record_kafka_refuses_for_good_stops_the_worker_and_says_what_to_do(
    stage: Stage,
) -> None:
    decision = decide(SendRejected("Kafka refused a record for dlq: MessageSizeTooLarge"), stage)
    assert isinstance(decision, Exit)
    assert "MessageSizeTooLarge" in decision.reason
    assert "neither applied nor dead-lettered" in decision.reason
    assert "not committed past" in decision.reason


def test_inputs_that_cannot_be_dead_lettered_exit_naming_them() -> None:
    where = "topic=chat-messages partition=3 offsets=7..9"
    for exc in (SendRejected("too large"), BrokerUnavailable("down"), RuntimeError("bug")):
        decision = undeliverable(exc, where)
        assert isinstance(decision, Exit) and decision.reason.endswith(f"({where})")
    assert "neither applied nor dead-lettered" in undeliverable(RuntimeError("bug")).reason


@pytest.mark.parametrize("stage", BOTH)
def test_a_cancelled_batch_is_skipped_and_left_for_redelivery(stage: Stage) -> None:
    assert isinstance(decide(asyncio.CancelledError(), stage), Skip)


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_class_follows_its_retriable_flag_at_admission(name: str) -> None:
    cls = getattr(errors, name)
    if cls in (InvalidEvent, ExtractionFailed):
        return  # input errors: dead-lettered whatever the flag says (both are not retriable)
    exc = cls.__new__(cls)
    Exception.__init__(exc, "x")
    decision = decide(exc, Stage.ADMISSION)
    # SendRejected is not retriable, but the input could not be dead-lettered either: exit.
    assert isinstance(decision, Exit) == (cls.retriable or cls is SendRejected), name
    assert issubclass(cls, ProfileStreamError)


def test_exiting_stops_the_process_with_the_crash_code(monkeypatch: pytest.MonkeyPatch) -> None:
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise SystemExit(code)

    monkeypatch.setattr("os._exit", fake_exit)
    monkeypatch.setattr("logging.shutdown", lambda: None)
    with pytest.raises(SystemExit):
        exit_for_redelivery(Exit("broker down"))
    with pytest.raises(SystemExit):
        exit_on_batch_crash(RuntimeError("boom"))
    assert codes == [CRASH_EXIT_CODE, CRASH_EXIT_CODE] == [70, 70]


def test_exiting_says_why_and_that_nothing_is_lost(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("os._exit", lambda code: None)
    monkeypatch.setattr("logging.shutdown", lambda: None)
    with caplog.at_level(logging.CRITICAL, logger=policy.__name__):
        exit_on_batch_crash(RuntimeError("boom"))
    assert "boom" in caplog.text and "redelivered after restart" in caplog.text


def test_a_batch_that_cannot_be_dead_lettered_exits_in_one_line_naming_its_inputs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("os._exit", lambda code: None)
    monkeypatch.setattr("logging.shutdown", lambda: None)
    exc = SendRejected("Kafka refused a record for dlq: MessageSizeTooLargeError")
    exc.add_note("topic=chat-messages partition=3 offsets=7..9")
    with caplog.at_level(logging.CRITICAL, logger=policy.__name__):
        exit_on_batch_crash(exc)
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "\n" not in line
    assert "topic=chat-messages partition=3 offsets=7..9" in line
    assert "MessageSizeTooLargeError" in line and "fix the limit" in line


class _ClientError(RuntimeError):
    """Stands for an error of the Kafka client or Faust that the wiring did not translate."""


@pytest.mark.parametrize("stage", BOTH)
@pytest.mark.parametrize("package", ["aiokafka.errors", "faust.exceptions", "mode.services"])
def test_an_untranslated_kafka_client_error_still_exits(
    stage: Stage, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ClientError, "__module__", package)
    assert isinstance(decide(_ClientError("timed out"), stage), Exit)
    wrapped = RuntimeError("while writing")
    wrapped.__cause__ = _ClientError("timed out")
    assert isinstance(decide(wrapped, stage), Exit)
