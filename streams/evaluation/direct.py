"""The direct run: each user's conversations through the worker's own chunked extraction and
merge (:class:`~streams.pipeline.flush.ChunkedExtraction` over the model extractor), with no
Kafka, worker or result cache: the fast path for prompt work.

``buffered`` gives each conversation to one flush (cut into calls of ``MAX_BATCH_MESSAGES`` /
``MAX_BATCH_CHARS``), as the worker does when a conversation ends; ``per-message`` gives each
message a flush of its own. A flush that gives up is counted as a failure and its messages are
left out, as the worker dead-letters them.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas import ChatMessage, ProfileRecord
from schemas.evaluation import EvalCost, EvalOutcomes, EvalUser
from streams.core.flushing import FlushPolicy
from streams.core.kinds import load_kinds
from streams.core.merge import Dropped
from streams.core.records import new_record
from streams.errors import ProfileStreamError
from streams.evaluation.dataset import messages_of
from streams.evaluation.outcomes import local_metrics, outcomes_between
from streams.evaluation.variants import Flush
from streams.extract.llm import LLMExtractor
from streams.metrics import REGISTRY
from streams.pipeline.flush import ChunkedExtraction
from streams.settings import Settings

__all__ = ["OnProgress", "Outcome", "cost_of", "run_direct"]

logger = logging.getLogger(__name__)

#: Told the users done so far (None where a run cannot tell), the messages extracted so far and
#: the model calls made so far.
OnProgress = Callable[[int | None, int, int], None]


@dataclass(frozen=True)
class Outcome:
    """What a run left: each user's final profile, what it cost, and what the extractor and
    the guards did on the way (``dropped``: each user's dropped operations, direct runs only)."""

    profiles: dict[str, dict[str, Any]]
    cost: EvalCost
    outcomes: EvalOutcomes = EvalOutcomes()
    dropped: dict[str, list[Dropped]] = field(default_factory=dict)


def _calls_and_tokens() -> tuple[float, float, float]:
    """This process's model calls and tokens so far (retries and failed calls included)."""

    def sample(name: str, labels: dict[str, str] | None = None) -> float:
        return REGISTRY.get_sample_value(f"profile_stream_{name}", labels) or 0.0

    calls = sum(
        s.value
        for family in REGISTRY.collect()
        for s in family.samples
        if s.name == "profile_stream_model_calls_total"
    )
    return (
        calls,
        sample("model_tokens_total", {"kind": "prompt"}),
        sample("model_tokens_total", {"kind": "completion"}),
    )


def cost_of(
    messages: int, calls: int, prompt: int, completion: int, failures: int, seconds: float
) -> EvalCost:
    """The cost figures, per message too."""
    per = max(messages, 1)
    return EvalCost(
        messages=messages,
        model_calls=calls,
        prompt_tokens=prompt,
        completion_tokens=completion,
        calls_per_message=calls / per,
        prompt_tokens_per_message=prompt / per,
        completion_tokens_per_message=completion / per,
        failures=failures,
        wall_time_s=seconds,
    )


async def _flush(
    extraction: ChunkedExtraction, record: ProfileRecord, messages: list[ChatMessage]
) -> tuple[ProfileRecord, bool, list[Dropped]]:
    """``record`` after one flush of ``messages``, whether it gave up, and the operations the
    guards and the merge dropped."""
    try:
        result, _ = await extraction.extract(record, messages)
    except ProfileStreamError as exc:
        logger.warning(
            "extraction failed user_id=%s messages=%d reason=%s", record.user_id, len(messages), exc
        )
        return record, True, []
    if result is None:
        return record, False, []
    update = {"profile": result.profile, "provenance": result.provenance}
    return record.model_copy(update=update), False, result.dropped


async def run_direct(
    users: Sequence[EvalUser],
    settings: Settings,
    flush: Flush,
    on_progress: OnProgress,
    *,
    guards: bool = True,
) -> Outcome:
    """Every user's conversations, in order, through the extraction ``settings`` give (without
    the quality guards when ``guards`` is False)."""
    kind = next(k for k in load_kinds(None, settings.profile_model) if k.is_user)
    policy = FlushPolicy(
        max_messages=settings.max_batch_messages,
        max_chars=settings.max_batch_chars,
        follow_ups=settings.follow_up_calls,
        per_turn=settings.extract_per_turn,
    )
    extractor = LLMExtractor(settings)
    extraction = ChunkedExtraction(kind, extractor, policy, guards=guards)
    started, before, counted = time.monotonic(), _calls_and_tokens(), local_metrics()
    profiles: dict[str, dict[str, Any]] = {}
    dropped: dict[str, list[Dropped]] = {}
    failures = messages = 0
    try:
        for done, user in enumerate(users):
            record = new_record(user.user_id, kind.schema.schema_id)
            for conversation in user.conversations:
                sent = messages_of(user, conversation)
                for batch in [[m] for m in sent] if flush == "per-message" else [sent]:
                    record, failed, drops = await _flush(extraction, record, batch)
                    dropped.setdefault(user.user_id, []).extend(drops)
                    failures += failed
                    messages += len(batch)
                    on_progress(done, messages, int(_calls_and_tokens()[0] - before[0]))
            profiles[user.user_id] = record.profile or kind.schema.empty()
            on_progress(done + 1, messages, int(_calls_and_tokens()[0] - before[0]))
    finally:
        await extractor.close()
    calls, prompt, completion = (
        int(a - b) for a, b in zip(_calls_and_tokens(), before, strict=True)
    )
    cost = cost_of(messages, calls, prompt, completion, failures, time.monotonic() - started)
    return Outcome(profiles, cost, outcomes_between(counted, local_metrics()), dropped)
