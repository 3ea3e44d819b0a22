"""Reading a chat-completion answer (the provider's JSON) into the patch text and its cost.

The provider's contract, not ours, so it lives here and not in ``schemas/``: only the fields
we read are checked, anything else in the answer is ignored.
"""

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from streams.errors import ExtractionFailed, InvalidModelOutput

__all__ = ["Completion", "read_completion"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Message(_Answer):
    content: str | None = None
    refusal: str | None = None


class _Choice(_Answer):
    message: _Message
    finish_reason: str | None = None


class _Usage(_Answer):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Completion(_Answer):
    choices: list[_Choice]
    usage: _Usage | None = None


@dataclass(frozen=True)
class Completion:
    """What is used of an answer: its text, its cost, and whether the output bound cut it."""

    content: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cut_off: bool = False


def read_completion(answer: Any) -> Completion:
    """The first choice's content, its token counts, and whether it was cut off at the
    output-token limit (``finish_reason`` "length": the caller keeps what is complete).

    Raises:
        InvalidModelOutput: the answer is not a completion or has no choice (worth another
            attempt).
        ExtractionFailed: the model refused (asking again gives the same answer).
    """
    try:
        completion = _Completion.model_validate(answer)
    except ValidationError as exc:
        raise InvalidModelOutput(
            f"model answer is not a chat completion ({exc.error_count()} problems, first: "
            f"{exc.errors()[0]['msg']} at {_where(exc)})"
        ) from None
    if not completion.choices:
        raise InvalidModelOutput("model answer has no choices")
    choice = completion.choices[0]
    if choice.message.refusal:
        raise ExtractionFailed(f"model refused: {choice.message.refusal[:200]}", cause="refused")
    usage = completion.usage or _Usage()
    return Completion(
        choice.message.content,
        usage.prompt_tokens,
        usage.completion_tokens,
        cut_off=choice.finish_reason == "length",
    )


def _where(exc: ValidationError) -> str:
    return ".".join(str(part) for part in exc.errors()[0]["loc"]) or "the top"
