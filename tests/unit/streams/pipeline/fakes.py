"""In-memory stand-ins for what the pipeline talks to, and a pipeline built on them.

The table is a dict, topics are lists, the model is scripted: the real admission, apply and
publish code runs as in a worker, one event after another, with no Kafka and no Faust.
"""

import asyncio
import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import SecretStr

from schemas import ChatMessage, ModelUsage, PatchOperation, ProfileCommand, ProfileRecord
from streams.core.codecs import COMMAND_HEADER, decode_record, encode
from streams.core.flushing import FlushPolicy
from streams.core.kinds import USER, Kind, load_kinds
from streams.core.partitioning import partition_for
from streams.core.profile_schema import ProfileSchema
from streams.core.records import restored
from streams.core.signing import CommandSigning, command_headers
from streams.extract.base import Extraction
from streams.extract.calls import CallOutcome
from streams.extract.calls import record as record_call
from streams.pipeline.admission import Admission, Admitted
from streams.pipeline.apply import ProfileUpdater
from streams.pipeline.buffer_store import BufferStore
from streams.pipeline.dead_letters import DeadLetters
from streams.pipeline.flush_clock import FlushClock
from streams.pipeline.job import Job
from streams.pipeline.policy import Exit
from streams.pipeline.publish import Publisher
from streams.settings import Settings
from tests.unit.helpers import T0

#: The key the admin tools of these tests sign commands with, and the workers verify.
COMMAND_KEY = SecretStr("unit-test-command-key-of-32-bytes-or-more")
#: How the admin tools sign: for the deployment of :class:`Pipeline`'s default settings.
SIGNING = CommandSigning((COMMAND_KEY,), audience="chat-messages")

__all__ = ["Event", "Pipeline", "Record", "ScriptedModel", "Topic", "chat", "command", "raw_bytes"]

INPUT = "chat-messages"


class Topic:
    """A topic that keeps what was sent; ``fail`` makes the next sends raise it, ``lose``
    makes their deliveries fail with it (the send itself is accepted)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []
        #: The partition (None: the producer's choice) and headers of each record sent.
        self.routing: list[tuple[int | None, list[tuple[str, bytes]]]] = []
        self.fail: BaseException | None = None
        self.lose: BaseException | None = None

    async def send(
        self,
        *,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        if self.fail is not None:
            raise self.fail
        self.sent.append((key, value))
        self.routing.append((partition, list(headers or ())))
        delivered = asyncio.get_running_loop().create_future()
        if self.lose is not None:
            delivered.set_exception(self.lose)
        else:
            delivered.set_result(None)
        return delivered

    @property
    def values(self) -> list[dict[str, Any]]:
        """What was sent, decoded from JSON."""
        return [orjson.loads(value) for _, value in self.sent]


@dataclass
class Record:
    """A consumed Kafka record (``SourceMessage``)."""

    key: bytes | None
    value: bytes | None
    offset: int = 0
    partition: int = 0
    topic: str = INPUT
    timestamp: float = T0.timestamp()
    headers: Any = ()


@dataclass
class Event:
    """A consumed event (``EventHandle``) that counts its acknowledgements."""

    message: Record
    acks: int = 0

    def ack(self) -> None:
        self.acks += 1


@dataclass
class ScriptedModel:
    """An extractor: ``name=<x>`` in a user message sets the name; anything else changes nothing.

    ``fail`` makes every call raise it; ``calls`` lists the message ids of each call;
    ``script`` is added to every answer as it is (a model's own citations and quotes). Each
    call reports one call, 10 prompt tokens per message and 5 completion tokens, and records
    its outcome for the model-call metric as a model extractor does; ``on_call`` runs at each
    call (a test moves its clock there: the call took that long, or revokes a partition).
    """

    name: str = "scripted"
    fail: BaseException | None = None
    script: list[PatchOperation] = field(default_factory=list)
    calls: list[list[str]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    on_call: Callable[[], None] | None = None

    async def extract(
        self,
        profile: dict[str, Any],
        messages: Sequence[ChatMessage],
        schema: ProfileSchema,
        *,
        subject: str | None = None,
        kind: str = USER,
        context: Sequence[ChatMessage] = (),
    ) -> Extraction:
        self.calls.append([m.message_id for m in messages])
        if self.on_call is not None:
            self.on_call()
        if self.fail is not None:
            record_call(CallOutcome.FAILED)
            raise self.fail
        record_call(CallOutcome.OK)
        return Extraction(
            [
                PatchOperation(field="name", op="set", value=m.content[5:], message_id=m.message_id)
                for m in messages
                if m.role == "user" and m.content.startswith("name=")
            ]
            + self.script,
            usage=ModelUsage(calls=1, prompt_tokens=10 * len(messages), completion_tokens=5),
        )

    async def forget(self, subject: str, *, kind: str = USER) -> int:
        self.forgotten.append(subject)
        return 0

    async def close(self) -> None:
        return None


def chat(
    message_id: str,
    content: str,
    *,
    offset: int = 0,
    user: str = "alice",
    key: bytes | None = None,
    partition: int | None = None,
    partitions: int = 1,
    sent_at: datetime = T0,
    headers: Any = (),
    timestamp: float | None = None,
    **fields: Any,
) -> Record:
    """The record of a chat message on the partition its user's key goes to (unless told)."""
    body = ChatMessage.model_validate(
        {
            "message_id": message_id,
            "user_id": user,
            "conversation_id": "c1",
            "role": "user",
            "content": content,
            "sent_at": sent_at,
        }
        | fields
    )
    key = key if key is not None else user.encode()
    if partition is None:
        partition = partition_for(user.encode(), partitions)
    return Record(
        key,
        encode(body),
        offset=offset,
        partition=partition,
        headers=headers,
        # The record's time (Kafka's CreateTime): the producer's clock, by default sent_at.
        timestamp=sent_at.timestamp() if timestamp is None else timestamp,
    )


def command(
    command_id: str,
    type_: str,
    *,
    offset: int = 0,
    user: str = "alice",
    signed: bool = True,
    signed_at: float | None = None,
    **fields: Any,
) -> Record:
    """The record of an operator command for ``user``, signed with :data:`COMMAND_KEY` unless
    ``signed`` is false (then only marked by the header, as a forged one would be).

    Signed at ``signed_at`` (default: ``offset`` ms after T0, so commands of one test are
    signed in the order of their offsets, as one admin tool would sign them)."""
    body = ProfileCommand.model_validate(
        {"command_id": command_id, "type": type_, "user_id": user, "requested_at": T0} | fields
    )
    key, value = user.encode(), encode(body)
    if not signed:
        return Record(key, value, offset=offset, headers=[COMMAND_HEADER])
    at = T0.timestamp() + offset / 1000 if signed_at is None else signed_at
    return Record(key, value, offset=offset, headers=command_headers(key, value, SIGNING, at))


def raw_bytes(dead_letter: dict[str, Any]) -> bytes:
    """The input bytes a dead letter carries."""
    return base64.b64decode(dead_letter["value_b64"])


class Pipeline:
    """One kind's admission, apply and publish over a dict table and list topics.

    ``feed`` runs each record as the worker would: admitted, then applied in a batch of its own
    (``batch`` applies several admitted records together), then acknowledged.
    """

    def __init__(
        self,
        *,
        partitions: int = 1,
        kind: Kind | None = None,
        flushing: FlushPolicy | None = None,
        input_framing: str = "none",
        revisions_per_field: int = 0,
        model: "ScriptedModel | None" = None,
    ) -> None:
        self.settings = Settings(
            partitions=partitions,
            extractor="rules",
            command_keys=(COMMAND_KEY,),
            input_framing=input_framing,  # type: ignore[arg-type]
        )
        self.kind = kind or load_kinds(None, self.settings.profile_model)[0]
        self.table: dict[bytes, bytes] = {}
        #: The buffer table: one entry per buffered message (``user\x1fseq``).
        self.buffer_table: dict[bytes, bytes] = {}
        self.buffers = BufferStore(self.buffer_table)
        self.output, self.dlq, self.reroute = Topic(), Topic(), Topic()
        self.model = model or ScriptedModel()
        self.exits: list[Exit] = []
        dead_letters = DeadLetters(self.dlq)
        #: The worker's clock, as the flush triggers read it; tests move it.
        self.now = T0.timestamp()
        self.admission = Admission(
            self.settings,
            self.kind,
            dead_letters,
            self.reroute,
            on_exit=self.exits.append,
        )
        self.publisher = Publisher(self.kind, self.table, self.output, purge=self.model.forget)
        self.clock = FlushClock()
        self.updater = ProfileUpdater(
            self.kind,
            self.model,
            self.table,
            self.publisher,
            dead_letters,
            # Default: every batch extracted as it comes (buffers of one batch's life).
            flushing=flushing or FlushPolicy(idle_s=0.0),
            on_buffer=self.clock.set,
            clock=lambda: self.now,
            buffers=self.buffers,
            revisions_per_field=revisions_per_field,
        )

    async def admit(self, record: Record) -> Admitted | None:
        return await self.admission.admit(record)

    async def feed(self, *records: Record) -> None:
        for record in records:
            await self.batch(record)

    async def batch(self, *records: Record) -> None:
        """Admit ``records``, apply the admitted ones as one batch, acknowledge them all."""
        jobs = [Job.of(Event(r), await self.admit(r), now=r.timestamp) for r in records]
        admitted = [job for job in jobs if job.admitted is not None]
        if admitted:
            await self.updater.apply(admitted[0].key, admitted)
        for job in jobs:
            job.ack()

    async def tick(self) -> None:
        """What the worker's flush timer does at ``now``: a flush job for each subject due."""
        for key, tp in self.clock.take_due(self.now):
            stand_in = Event(Record(None, None, partition=tp[1], topic=tp[0]))
            await self.updater.apply(key, [Job.flush(key, tp, stand_in, None)])

    def stored(self, user: str = "alice") -> ProfileRecord:
        """The record the table holds for ``user``, with its buffer from the buffer table."""
        record = decode_record(self.table[user.encode()])
        return restored(record, self.buffers.entries(user.encode(), record.buffer_seq))
