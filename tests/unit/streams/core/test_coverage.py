"""Coverage follow-ups: what a flush asks again after a call that stopped early."""

from schemas import ChatMessage, PatchOperation
from streams.core.coverage import Coverage, per_turn, uncited_rest
from tests.unit.helpers import MakeMessage

USER = ("user",)


def turns(make_message: MakeMessage, roles: str) -> list[ChatMessage]:
    """One message per letter of ``roles`` (u: user, a: assistant), ids m0, m1..."""
    role = {"u": "user", "a": "assistant"}
    return [make_message(f"m{i}", "text", role=role[r]) for i, r in enumerate(roles)]


def cite(*ids: str) -> list[PatchOperation]:
    return [PatchOperation(field="name", op="set", value="x", message_id=i) for i in ids]


def ids(messages: list[ChatMessage]) -> list[str]:
    return [m.message_id for m in messages]


def test_the_turns_after_the_last_cited_one_are_asked_with_the_reply_to_it(
    make_message: MakeMessage,
) -> None:
    batch = turns(make_message, "uauaua")
    assert ids(uncited_rest(batch, {"m0"}, USER)) == ["m1", "m2", "m3", "m4", "m5"]
    # The last cited turn counts, not the first: m0 uncited before m2 is not asked again.
    assert ids(uncited_rest(batch, {"m2"}, USER)) == ["m3", "m4", "m5"]


def test_nothing_is_asked_again_when_nothing_is_cited_or_no_user_turn_is_left(
    make_message: MakeMessage,
) -> None:
    batch = turns(make_message, "uaua")
    assert uncited_rest(batch, set(), USER) == []
    assert uncited_rest(batch, {"m2"}, USER) == []  # only the assistant's reply is after it
    assert uncited_rest(batch, {"elsewhere"}, USER) == []  # an id not in the batch
    assert uncited_rest(batch, {"m1"}, USER) == []  # an assistant turn is never a citation


def test_a_flush_makes_at_most_its_budget_of_follow_ups(make_message: MakeMessage) -> None:
    batch = turns(make_message, "uuuu")
    coverage = Coverage(2, USER)
    first = coverage.next_ask(batch, cite("m0"))
    assert ids(first) == ["m1", "m2", "m3"]
    second = coverage.next_ask(first, cite("m1"))
    assert ids(second) == ["m2", "m3"]
    assert coverage.left == 0
    assert coverage.next_ask(second, cite("m2")) == []  # m3 is left, the budget is not


def test_a_call_that_covered_its_batch_spends_nothing(make_message: MakeMessage) -> None:
    coverage = Coverage(1, USER)
    assert coverage.next_ask(turns(make_message, "uau"), cite("m0", "m2")) == []
    assert coverage.next_ask(turns(make_message, "uau"), []) == []
    assert coverage.left == 1


def test_no_budget_asks_nothing_again(make_message: MakeMessage) -> None:
    assert Coverage(0, USER).next_ask(turns(make_message, "uu"), cite("m0")) == []


def test_per_turn_asks_each_user_turn_with_its_question_and_the_rest_as_context(
    make_message: MakeMessage,
) -> None:
    batch = turns(make_message, "uaaua")
    asks = per_turn(batch, USER)
    assert [(ids(a.messages), ids(a.context)) for a in asks] == [
        (["m0"], []),
        (["m1", "m2", "m3"], ["m0"]),  # the trailing assistant turn is asked about in none
    ]
    assert per_turn(turns(make_message, "aa"), USER) == []
