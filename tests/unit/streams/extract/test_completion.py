"""Reading the provider's chat-completion JSON: what is used, and what is refused how."""

from typing import Any

import pytest

from streams.errors import ExtractionFailed, InvalidModelOutput
from streams.extract.completion import Completion, read_completion


def _answer(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
        **extra,
    }


def test_content_and_token_counts_are_read_and_unknown_fields_ignored() -> None:
    answer = _answer(
        {"content": '{"operations": []}', "annotations": []},
        usage={"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129},
        system_fingerprint="fp",
    )
    assert read_completion(answer) == Completion('{"operations": []}', 120, 9)


def test_an_answer_without_usage_costs_zero_tokens() -> None:
    assert read_completion(_answer({"content": "{}"})) == Completion("{}", 0, 0)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("<html>bad gateway</html>", "not a chat completion"),
        ({"error": {"message": "boom"}}, "choices"),
        ({"choices": [{"message": "text"}]}, "choices.0.message"),
        ({"choices": []}, "no choices"),
    ],
)
def test_a_malformed_answer_is_worth_another_attempt(answer: Any, says: str) -> None:
    with pytest.raises(InvalidModelOutput, match=says):
        read_completion(answer)


def test_a_cut_off_answer_is_read_and_marked() -> None:
    # The caller keeps the operations complete before the cut (streams.extract.repair).
    cut = read_completion(_answer({"content": '{"operations": ['}, finish="length"))
    assert cut == Completion('{"operations": [', cut_off=True)


def test_a_refusal_is_final_and_quoted() -> None:
    with pytest.raises(ExtractionFailed, match="model refused: I cannot help") as caught:
        read_completion(_answer({"content": None, "refusal": "I cannot help with that"}))
    assert caught.value.cause == "refused"
