"""Reading an answer that is almost JSON: what is repaired, and what is refused."""

import pytest

from streams.errors import InvalidModelOutput
from streams.extract.repair import loads_answer

OP = '{"field": "name", "op": "set", "value": "Al", "message_id": "m1", "quote": "I am Al"}'


@pytest.mark.parametrize(
    ("content", "repair"),
    [
        (f'{{"operations": [{OP}]}}', None),
        (f'```json\n{{"operations": [{OP}]}}\n```', "code_fence"),
        (f'```\n{{"operations": [{OP}]}}', "code_fence"),
        (f'Here you go: {{"operations": [{OP}]}} Hope this helps!', "trailing_text"),
        (f'{{"operations": [{OP}, {OP[:30]}', "cut_off"),
        (f'{{"operations": [{OP},\n {OP},', "cut_off"),
    ],
)
def test_what_can_be_read_is_read_and_the_repair_named(content: str, repair: str | None) -> None:
    value, done = loads_answer(content)
    assert done == repair
    assert value["operations"][0]["value"] == "Al"


def test_a_cut_off_answer_keeps_only_its_complete_operations() -> None:
    value, _ = loads_answer(f'{{"operations": [{OP}, {OP}, {{"field": "languages", "op": "a')
    assert len(value["operations"]) == 2


@pytest.mark.parametrize(
    "content", [None, "", "Sure!", '{"operations": [', '{"operations": [{"field": "na', "{{{"]
)
def test_nothing_readable_is_invalid_output(content: str | None) -> None:
    with pytest.raises(InvalidModelOutput, match="not JSON"):
        loads_answer(content)
