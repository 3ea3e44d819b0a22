"""Admission: what becomes work, what is dead-lettered (and why), re-routed or forwarded."""

from dataclasses import replace
from datetime import timedelta

import pytest

from schemas import ChatMessage, ProfileCommand, UserProfile
from streams.core.forget_mark import FIRST_SEEN_HEADER, FirstSeen, first_seen_in
from streams.core.framing import frame
from streams.core.kinds import Kind
from streams.core.origin import ORIGIN_HEADER, SEAL_HEADER, origin_headers, origin_of
from streams.core.partitioning import partition_for
from streams.core.profile_schema import ProfileSchema
from streams.core.signing import command_headers
from streams.errors import BrokerUnavailable, SendRejected
from streams.pipeline.dead_letters import DeadLetters
from tests.unit.helpers import T0

from .fakes import SIGNING, Pipeline, Record, Topic, chat, command, raw_bytes


async def test_a_valid_message_is_admitted_for_its_user() -> None:
    pipeline = Pipeline()
    admitted = await pipeline.admit(chat("m1", "hello", offset=7))
    assert admitted is not None
    assert admitted.key == b"alice" and admitted.msg.offset == 7
    assert isinstance(admitted.body, ChatMessage) and admitted.body.message_id == "m1"
    assert pipeline.dlq.sent == [] and pipeline.reroute.sent == []


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"{not json", "not_json"),
        (b"\xff\xfe", "not_utf8"),
        (b'{"message_id": "m1", "user_id": "alice"}', "invalid_message"),
        (None, "invalid_message"),
    ],
)
async def test_an_undecodable_event_is_dead_lettered_as_it_came(
    value: bytes | None, code: str
) -> None:
    pipeline = Pipeline()
    bad = Record(b"alice", value, offset=3)
    assert await pipeline.admit(bad) is None
    (dead,) = pipeline.dlq.values
    assert dead["reason_code"] == code and dead["reason"]
    assert (dead["source_topic"], dead["source_partition"], dead["source_offset"]) == (
        "chat-messages",
        0,
        3,
    )
    assert raw_bytes(dead) == (value or b"")


async def test_a_message_from_the_future_is_dead_lettered_with_the_setting_to_change() -> None:
    pipeline = Pipeline()
    early = chat("m1", "hi", sent_at=T0 + timedelta(hours=1), timestamp=T0.timestamp())
    assert await pipeline.admit(early) is None
    (dead,) = pipeline.dlq.values
    assert dead["reason_code"] == "invalid_message" and dead["user_id"] == "alice"
    assert "PROFILE_STREAM_MAX_FUTURE_SKEW_S" in dead["reason"]


async def test_a_key_naming_another_user_is_dead_lettered() -> None:
    pipeline = Pipeline()
    assert await pipeline.admit(chat("m1", "hi", key=b"mallory")) is None
    (dead,) = pipeline.dlq.values
    assert dead["reason_code"] == "key_mismatch" and dead["user_id"] == "alice"


@pytest.mark.parametrize("key", [b"alice", None])
async def test_a_message_on_another_users_partition_is_re_routed_by_its_user_id(
    key: bytes | None,
) -> None:
    pipeline = Pipeline(partitions=8)
    home = partition_for(b"alice", 8)
    misplaced = chat("m1", "hi", key=key, partition=(home + 1) % 8, partitions=8)
    if key is None:
        misplaced.key, misplaced.partition = None, home  # unkeyed: re-keyed even if in place
    assert await pipeline.admit(misplaced) is None
    assert pipeline.reroute.sent == [(b"alice", misplaced.value)]
    # to the partition named by the configured count, never the producer's: no loop when
    # partitions are added at run time; with where it came from, to skip a second copy
    origin = f"chat-messages:{misplaced.partition}:{misplaced.offset}".encode()
    [(partition, headers)] = pipeline.reroute.routing
    assert (partition, headers[0]) == (home, (ORIGIN_HEADER, origin))
    assert [name for name, _ in headers] == [ORIGIN_HEADER, SEAL_HEADER, FIRST_SEEN_HEADER]
    assert pipeline.dlq.sent == []


async def test_a_re_routed_copy_sent_again_after_a_crash_is_applied_once() -> None:
    pipeline = Pipeline(partitions=8)
    home = partition_for(b"alice", 8)
    misplaced = chat("m1", "name=Alice", partition=(home + 1) % 8, partitions=8, offset=40)

    async def reroute(offset: int) -> Record:
        """The copy a re-route sends, read back at ``offset`` of the user's partition."""
        await pipeline.admit(misplaced)  # admitted again after a crash: sent again
        (key, value), (_, headers) = pipeline.reroute.sent[-1], pipeline.reroute.routing[-1]
        return Record(key, value, offset=offset, partition=home, headers=headers)

    await pipeline.feed(await reroute(0))
    # more messages than the record's recent ids hold, so only the origin offset can tell
    await pipeline.batch(*(chat(f"n{i}", "hi", offset=1 + i, partitions=8) for i in range(300)))
    assert "m1" not in pipeline.stored().recent_message_ids
    await pipeline.feed(await reroute(301))
    assert pipeline.model.calls[0] == ["m1"]
    assert [m for call in pipeline.model.calls for m in call].count("m1") == 1
    assert [e["event_id"] for e in pipeline.output.values] == ["alice:1"]
    assert pipeline.stored().applied[f"origin:chat-messages:{misplaced.partition}"] == 40


async def test_an_origin_header_no_worker_sealed_is_ignored() -> None:
    """One forged origin with a huge offset would otherwise hide every later copy from that
    partition: acknowledged, never applied, never dead-lettered."""
    pipeline = Pipeline(partitions=4)
    home = partition_for(b"bob", 4)
    other = (home + 1) % 4
    huge = f"chat-messages:{other}:{2**62}".encode()
    forged = chat("evil", "hi", user="bob", partitions=4, headers=[(ORIGIN_HEADER, huge)])
    await pipeline.feed(forged)
    assert f"origin:chat-messages:{other}" not in pipeline.stored("bob").applied
    # a sealed origin moved onto another message is no better
    sealed = origin_headers("chat-messages", other, 2**62, key=b"bob", value=b"{}", signing=SIGNING)
    moved = chat("evil2", "hi", user="bob", offset=1, partitions=4, headers=sealed)
    await pipeline.feed(moved)
    misplaced = chat("m1", "name=Bob", user="bob", offset=7, partition=other, partitions=4)
    await pipeline.feed(misplaced)
    (key, value), (_, headers) = pipeline.reroute.sent[-1], pipeline.reroute.routing[-1]
    await pipeline.feed(Record(key, value, offset=2, partition=home, headers=headers))
    assert pipeline.stored("bob").profile.get("name") == "Bob"
    assert pipeline.dlq.sent == []


async def test_a_command_is_admitted_but_never_re_routed() -> None:
    pipeline = Pipeline(partitions=8)
    forget = command("c1", "forget")
    forget.partition = partition_for(b"alice", 8)
    admitted = await pipeline.admit(forget)
    assert admitted is not None and isinstance(admitted.body, ProfileCommand)

    forget.partition = (forget.partition + 1) % 8
    assert await pipeline.admit(forget) is None
    assert pipeline.reroute.sent == []
    assert [d["reason_code"] for d in pipeline.dlq.values] == ["invalid_command"]
    assert pipeline.dlq.values[0]["command"] is True


def _team() -> Kind:
    return Kind("team", ProfileSchema(UserProfile), subject="metadata.team_id")


async def test_a_message_naming_another_kinds_subject_is_forwarded_keyed_by_it() -> None:
    pipeline = Pipeline()
    teams = Topic()
    pipeline.admission.forwards = [(_team(), teams)]
    with_team = chat("m1", "we ship on friday", metadata={"team_id": "t7"})
    await pipeline.admit(with_team)
    await pipeline.admit(chat("m2", "no team here", offset=1))
    await pipeline.admit(
        chat("m3", "an answer", offset=2, role="assistant", metadata={"team_id": "t7"})
    )
    assert teams.sent == [(b"t7", with_team.value)]  # assistant turns are no team's facts
    [(partition, headers)] = teams.routing
    assert (partition, headers[0]) == (None, (ORIGIN_HEADER, b"chat-messages:0:0"))
    assert origin_of(headers, b"t7", with_team.value, SIGNING) == ("origin:chat-messages:0", 0)


async def test_a_forwarded_copy_sent_again_after_a_crash_is_applied_once_by_the_kind() -> None:
    pipeline = Pipeline(kind=_team())
    copy = chat("m1", "name=Ship", metadata={"team_id": "t7"}, key=b"t7")
    copy.headers = headers = origin_headers(
        "chat-messages", 2, 17, key=b"t7", value=copy.value, signing=SIGNING
    )
    await pipeline.feed(copy)
    others = (
        chat(f"n{i}", "hi", offset=1 + i, metadata={"team_id": "t7"}, key=b"t7") for i in range(300)
    )
    await pipeline.batch(*others)
    copy_again = chat(
        "m1", "name=Ship", offset=301, metadata={"team_id": "t7"}, key=b"t7", headers=headers
    )
    await pipeline.feed(copy_again)
    assert [m for call in pipeline.model.calls for m in call].count("m1") == 1
    assert [e["version"] for e in pipeline.output.values] == [1]


async def test_another_kinds_topic_admits_only_records_keyed_by_their_subject() -> None:
    pipeline = Pipeline(kind=_team())
    message = chat("m1", "we ship", metadata={"team_id": "t7"}, key=b"t7")
    admitted = await pipeline.admit(message)
    assert admitted is not None and admitted.key == b"t7"

    assert await pipeline.admit(chat("m2", "we ship", metadata={"team_id": "t7"})) is None
    assert [d["reason_code"] for d in pipeline.dlq.values] == ["key_mismatch"]


async def test_kafka_failing_during_admission_exits_for_redelivery_instead_of_dead_lettering() -> (
    None
):
    pipeline = Pipeline(partitions=8)
    pipeline.reroute.fail = BrokerUnavailable("broker down")
    home = partition_for(b"alice", 8)
    assert await pipeline.admit(chat("m1", "hi", partition=(home + 1) % 8, offset=5)) is None
    (exit_,) = pipeline.exits
    assert "broker down" in exit_.reason and "offset=5" in exit_.reason
    assert pipeline.dlq.sent == []


async def test_a_re_routed_copy_kafka_fails_to_deliver_stops_the_worker_before_the_ack() -> None:
    pipeline = Pipeline(partitions=8)
    pipeline.reroute.lose = BrokerUnavailable("partition leader gone")
    home = partition_for(b"alice", 8)
    assert await pipeline.admit(chat("m1", "hi", partition=(home + 1) % 8, offset=5)) is None
    (exit_,) = pipeline.exits  # not acknowledged: redelivered to the next worker
    assert "partition leader gone" in exit_.reason and "offset=5" in exit_.reason


async def test_a_forwarded_copy_kafka_fails_to_deliver_stops_the_worker_before_the_ack() -> None:
    pipeline = Pipeline()
    teams = Topic()
    teams.lose = SendRejected("not authorized to write teams")
    pipeline.admission.forwards = [(_team(), teams)]
    assert await pipeline.admit(chat("m1", "hi", metadata={"team_id": "t7"})) is None
    (exit_,) = pipeline.exits
    assert "not authorized" in exit_.reason
    assert pipeline.dlq.sent == []


async def test_a_bug_met_by_one_event_dead_letters_it_and_admission_goes_on() -> None:
    pipeline = Pipeline()
    teams = Topic()
    teams.fail = RuntimeError("bug")
    pipeline.admission.forwards = [(_team(), teams)]
    assert await pipeline.admit(chat("m1", "hi", metadata={"team_id": "t7"})) is None
    (dead,) = pipeline.dlq.values
    assert dead["reason_code"] == "internal_error" and "RuntimeError" in dead["reason"]
    assert "bug" not in dead["reason"]  # an exception's message may quote the input
    assert pipeline.exits == []
    assert await pipeline.admit(chat("m2", "hi", offset=1)) is not None


async def test_when_the_dead_letter_topic_is_down_too_the_worker_exits() -> None:
    pipeline = Pipeline()
    pipeline.dlq.fail = BrokerUnavailable("broker down")
    assert await pipeline.admit(Record(b"alice", b"{not json")) is None
    assert len(pipeline.exits) == 1


async def test_a_dead_letter_is_kept_within_the_producers_request_size() -> None:
    pipeline = Pipeline()
    pipeline.admission.dead_letters = DeadLetters(pipeline.dlq, max_request_bytes=100_000)
    huge = b"{" + b"x" * 120_000  # its letter would be 160 kB
    assert await pipeline.admit(Record(b"alice", huge, offset=3)) is None
    ((key, value),) = pipeline.dlq.sent
    assert key == b"alice" and len(value) <= 100_000 - len(b"alice") - 8 * 1024
    (letter,) = pipeline.dlq.values
    assert (letter["reason_code"], letter["source_offset"]) == ("not_json", 3)
    assert letter["truncated"] and letter["original_size"] == len(huge)
    assert huge.startswith(raw_bytes(letter)) and pipeline.exits == []


@pytest.mark.parametrize(
    "record",
    [
        Record(b"alice", b"{not json", offset=9),
        chat("m1", "hi", offset=9, metadata={"team_id": "t"}),
    ],
    ids=["invalid", "bug"],
)
async def test_an_input_kafka_refuses_to_dead_letter_stops_the_worker_naming_it(
    record: Record,
) -> None:
    pipeline = Pipeline()
    teams = Topic()
    teams.fail = RuntimeError("bug")
    pipeline.admission.forwards = [(_team(), teams)]
    pipeline.dlq.fail = SendRejected("Kafka refused a record for dlq: MessageSizeTooLargeError")
    assert await pipeline.admit(record) is None
    (exit_,) = pipeline.exits
    assert "MessageSizeTooLargeError" in exit_.reason and "offset=9" in exit_.reason
    assert "neither applied nor dead-lettered" in exit_.reason


async def test_a_command_without_a_valid_signature_is_dead_lettered_and_changes_nothing() -> None:
    pipeline = Pipeline()
    forged = command("c1", "forget", signed=False)
    assert await pipeline.admit(forged) is None
    tampered = command("c2", "forget", offset=1)
    tampered.value = tampered.value.replace(b'"alice"', b'"bob"')
    tampered.key = b"bob"
    assert await pipeline.admit(tampered) is None
    letters = pipeline.dlq.values
    assert [d["reason_code"] for d in letters] == ["invalid_command", "invalid_command"]
    assert all("signature" in d["reason"] for d in letters)
    assert pipeline.table == {} and pipeline.output.sent == []


async def test_a_command_signed_too_long_ago_or_for_another_deployment_is_dead_lettered() -> None:
    pipeline = Pipeline()
    signed_at = T0.timestamp()
    # Its age is taken when it was produced (the record's timestamp), not when it is read.
    late = command("c1", "forget", signed_at=signed_at)
    late.timestamp = signed_at + 3600
    assert await pipeline.admit(late) is not None
    # Produced an hour and a second after it was signed: a captured command sent again.
    again = command("c1", "forget", signed_at=signed_at)
    again.timestamp = signed_at + 3601
    assert await pipeline.admit(again) is None
    staging = command("c2", "forget", offset=1)
    assert staging.value is not None
    other = replace(SIGNING, audience="staging/chat-messages")  # the same key
    staging.headers = command_headers(staging.key, staging.value, other, staging.timestamp)
    assert await pipeline.admit(staging) is None
    reasons = [d["reason"] for d in pipeline.dlq.values]
    assert "PROFILE_STREAM_COMMAND_MAX_AGE_S" in reasons[0]
    assert "PROFILE_STREAM_COMMAND_AUDIENCE" in reasons[1]


async def test_a_command_read_long_after_it_was_produced_is_applied_as_at_first() -> None:
    # A replay of the input (an offset reset, a new app rebuilding profiles) reads commands
    # days after they were signed; each was produced right after its signing.
    first, replay = Pipeline(), Pipeline()
    replay.now = T0.timestamp() + 30 * 86400
    for pipeline in (first, replay):
        await pipeline.feed(chat("m1", "name=Alice", offset=0), command("f1", "forget", offset=1))
    assert [d["reason"] for d in replay.dlq.values] == []
    assert replay.output.values == first.output.values


async def test_a_schema_registry_framed_message_is_dead_lettered_naming_the_setting() -> None:
    pipeline = Pipeline()
    plain = chat("m1", "I'm Alice", offset=4)
    framed = Record(plain.key, frame(plain.value or b"", 12), offset=4)
    assert await pipeline.admit(framed) is None
    (dead,) = pipeline.dlq.values
    assert dead["reason_code"] == "not_json"
    assert "Schema Registry frame" in dead["reason"]
    assert "PROFILE_STREAM_INPUT_FRAMING" in dead["reason"]
    assert raw_bytes(dead) == framed.value  # the frame kept: replayable once the setting is on


@pytest.mark.parametrize("framing", ["auto", "confluent"])
async def test_with_framing_accepted_the_frame_is_stripped_and_the_message_admitted(
    framing: str,
) -> None:
    pipeline = Pipeline(input_framing=framing)
    plain = chat("m1", "I'm Alice", offset=4)
    admitted = await pipeline.admit(Record(plain.key, frame(plain.value or b"", 12), offset=4))
    assert admitted is not None and pipeline.dlq.sent == []
    assert isinstance(admitted.body, ChatMessage) and admitted.body.content == "I'm Alice"


async def test_a_copy_says_where_and_when_its_message_was_first_taken_in() -> None:
    pipeline = Pipeline(partitions=8)
    home = partition_for(b"alice", 8)
    misplaced = chat("m1", "hi", partition=(home + 1) % 8, partitions=8, offset=40)
    misplaced.timestamp = T0.timestamp() + 3
    plain = await pipeline.admit(chat("m0", "hi", partition=home, partitions=8, offset=5))
    assert plain is not None
    assert plain.seen == FirstSeen(f"chat-messages:{home}", 5, int(T0.timestamp() * 1000))
    await pipeline.admit(misplaced)
    [(_, headers)] = pipeline.reroute.routing
    first = FirstSeen(f"chat-messages:{misplaced.partition}", 40, int(misplaced.timestamp * 1000))
    assert first_seen_in(headers) == first
    # the copy, read back on alice's partition, is judged as its original
    (key, value) = pipeline.reroute.sent[0]
    copy = await pipeline.admit(Record(key, value, offset=9, partition=home, headers=headers))
    assert copy is not None and copy.seen == first


async def test_a_record_read_after_its_time_is_first_seen_no_later_than_it_was_read() -> None:
    pipeline = Pipeline()
    pipeline.admission.clock = lambda: T0.timestamp() - 60  # its timestamp is a minute ahead
    admitted = await pipeline.admit(chat("m1", "hi", offset=3))
    assert admitted is not None and admitted.seen.at_ms == int(T0.timestamp() * 1000) - 60_000


async def test_a_sealed_copy_of_the_release_before_is_first_seen_at_its_origin() -> None:
    pipeline = Pipeline(kind=_team())
    copy = chat("m1", "hi", metadata={"team_id": "t7"}, key=b"t7", offset=4)
    copy.headers = origin_headers(
        "chat-messages", 2, 17, key=b"t7", value=copy.value, signing=SIGNING
    )
    admitted = await pipeline.admit(copy)
    assert admitted is not None
    assert admitted.seen == FirstSeen("chat-messages:2", 17, int(copy.timestamp * 1000))
