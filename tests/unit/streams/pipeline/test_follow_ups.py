"""What a flush asks a model that answers only a batch's first fact: with follow-ups, the turns
after it again, with the profile as updated, within the flush's budget (those calls counted
under their own reason); per turn, one call per user turn with the turns before it as context."""

from collections.abc import Sequence
from typing import Any

from schemas import ChatMessage
from streams.core.flushing import FlushPolicy
from streams.core.profile_schema import ProfileSchema
from streams.core.records import new_record
from streams.extract.base import Extraction
from streams.metrics import REGISTRY
from streams.pipeline.flush import ChunkedExtraction
from tests.unit.helpers import T0

from .fakes import Pipeline, ScriptedModel, chat


class FirstFactOnly(ScriptedModel):
    """A small model's habit: of the turns it is given, only the first fact is answered."""

    profiles: list[dict[str, Any]]
    contexts: list[list[str]]

    def __init__(self) -> None:
        super().__init__()
        self.profiles, self.contexts = [], []

    async def extract(
        self,
        profile: dict[str, Any],
        messages: Sequence[ChatMessage],
        schema: ProfileSchema,
        **options: Any,
    ) -> Extraction:
        self.profiles.append(dict(profile))
        self.contexts.append([m.message_id for m in options.get("context", ())])
        answer = await super().extract(profile, messages, schema, **options)
        return Extraction(answer.operations[:1], usage=answer.usage)


def turns(*contents: str) -> list[ChatMessage]:
    """A conversation: each content a user turn, each followed by the assistant's reply."""
    messages = []
    for i, content in enumerate(contents):
        for role, text, n in (("user", content, 2 * i), ("assistant", "ok", 2 * i + 1)):
            messages.append(
                ChatMessage(
                    message_id=f"m{n}", user_id="alice", role=role, content=text, sent_at=T0
                )
            )
    return messages


def follow_up_calls() -> float:
    labels = {"reason": "follow_up", "outcome": "ok"}
    return REGISTRY.get_sample_value("profile_stream_model_calls_total", labels) or 0.0


async def extract(
    budget: int, messages: list[ChatMessage], *, per_turn: bool = False
) -> tuple[FirstFactOnly, str | None]:
    """The calls made and the name left after one flush of ``messages`` with ``budget``."""
    pipeline = Pipeline()
    model = FirstFactOnly()
    policy = FlushPolicy(follow_ups=budget, per_turn=per_turn)
    extraction = ChunkedExtraction(pipeline.kind, model, policy)
    record = new_record("alice", pipeline.kind.schema.schema_id)
    result, spent = await extraction.extract(record, messages)
    assert spent.calls == len(model.calls)
    return model, result.profile.get("name") if result else None


async def test_the_turns_after_the_last_fact_taken_are_asked_again_until_none_is_left() -> None:
    model, name = await extract(5, turns("name=Ann", "hello", "name=Bea", "name=Cy"))
    assert model.calls == [
        ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"],
        ["m1", "m2", "m3", "m4", "m5", "m6", "m7"],  # the reply to the cited turn as context
        ["m5", "m6", "m7"],  # after Bea; after Cy only the assistant's reply is left
    ]
    assert name == "Cy"
    # The follow-ups saw the profile the calls before them made.
    assert [p.get("name") for p in model.profiles] == [None, "Ann", "Bea"]


async def test_a_call_that_takes_nothing_ends_the_follow_ups() -> None:
    model, name = await extract(5, turns("name=Ann", "hello", "how are you"))
    assert len(model.calls) == 2  # the follow-up found nothing in "hello", "how are you"
    assert name == "Ann"


async def test_follow_ups_stop_at_the_budget_and_none_without_one() -> None:
    conversation = turns("name=Ann", "name=Bea", "name=Cy", "name=Dee")
    model, name = await extract(2, conversation)
    assert len(model.calls) == 3 and name == "Cy"
    model, name = await extract(0, conversation)
    assert len(model.calls) == 1 and name == "Ann"


async def test_a_worker_flush_counts_its_follow_ups_under_their_own_reason() -> None:
    pipeline = Pipeline(flushing=FlushPolicy(idle_s=0, follow_ups=3), model=FirstFactOnly())
    before = follow_up_calls()
    await pipeline.batch(chat("m0", "name=Ann", offset=0), chat("m1", "name=Bea", offset=1))
    assert pipeline.model.calls == [["m0", "m1"], ["m1"]]
    assert follow_up_calls() - before == 1
    assert pipeline.stored().profile["name"] == "Bea"


async def test_per_turn_each_user_turn_is_a_call_with_the_turns_before_it_as_context() -> None:
    model, name = await extract(0, turns("name=Ann", "hello", "name=Bea"), per_turn=True)
    assert model.calls == [["m0"], ["m1", "m2"], ["m3", "m4"]]  # m5, a last reply: no call
    assert model.contexts == [[], ["m0"], ["m0", "m1", "m2"]]
    assert [p.get("name") for p in model.profiles] == [None, "Ann", "Ann"]
    assert name == "Bea"
