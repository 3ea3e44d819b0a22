"""Grounding: an operation applies only when its words are in a source turn of the batch."""

import pytest

from schemas import PatchOperation
from streams.core.grounding import ground, normalize, occurs, value_occurs
from tests.unit.helpers import MakeMessage


def op(field: str, value: object, mid: str, quote: str = "", kind: str = "set") -> PatchOperation:
    return PatchOperation(field=field, op=kind, value=value, message_id=mid, quote=quote)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("quote", "text"),
    [
        ("I’m moving to Denver", "Well, I'm   moving to denver next week."),
        ('"I live in Lyon."', "I live in Lyon"),
        ("tea — always", "Tea - always, never coffee"),
        ("I grew up … speaking Spanish", "I grew up in Madrid speaking Spanish at home"),
    ],
)
def test_a_retyped_quote_still_occurs(quote: str, text: str) -> None:
    assert occurs(quote, text)


@pytest.mark.parametrize(
    ("quote", "text"),
    [
        ("", "anything"),
        ("...", "anything"),
        ("I live in Paris", "My sister lives in Paris"),
        ("speaking Spanish … I grew up", "I grew up in Madrid speaking Spanish"),
    ],
)
def test_a_quote_that_is_not_there_does_not_occur(quote: str, text: str) -> None:
    assert not occurs(quote, text)


def test_normalize_folds_case_space_quotes_dashes_and_edges() -> None:
    assert normalize("  «It’s  FINE — “ok”!»  ") == "it's fine - \"ok"


def test_a_value_occurs_only_as_whole_words() -> None:
    assert value_occurs("Spanish", "I speak spanish at home")
    assert not value_occurs("Spanish", "I love Spanishness")
    assert value_occurs(["Go", "Rust"], "Go and Rust mostly")
    assert not value_occurs(["Go", "Rust"], "Go mostly")
    assert not value_occurs("I", "I am here") and not value_occurs(True, "True")


def test_an_operation_citing_the_assistant_turn_is_given_to_the_user_turn_before_it(
    make_message: MakeMessage,
) -> None:
    batch = [
        make_message("u1", "Hi there"),
        make_message("u2", "I just moved to Denver for work."),
        make_message("a2", "Denver is lovely! How is the move going?", role="assistant"),
    ]
    result = ground([op("location", "Denver", "a2", "moved to Denver")], batch)
    assert [(o.message_id, o.quote) for o in result.operations] == [("u2", "moved to Denver")]
    assert [r.code for r in result.repaired] == ["reattributed"]
    assert result.dropped == []


def test_the_assistants_own_claim_is_dropped(make_message: MakeMessage) -> None:
    batch = [
        make_message("u1", "What should I pack for my trip?"),
        make_message("a1", "Since you live in Paris, pack light.", role="assistant"),
    ]
    result = ground([op("location", "Paris", "a1", "you live in Paris")], batch)
    assert result.operations == []
    assert [d.code for d in result.dropped] == ["cites_non_source_role"]


def test_an_unknown_id_is_reattributed_when_one_user_turn_holds_the_quote(
    make_message: MakeMessage,
) -> None:
    batch = [make_message("u1", "Call me Bea."), make_message("u2", "I speak Basque too.")]
    result = ground([op("languages", "Basque", "m-7", "I speak Basque", "add")], batch)
    assert [o.message_id for o in result.operations] == ["u2"]
    unknown = ground([op("languages", "Welsh", "m-7", "I speak Welsh", "add")], batch)
    assert [d.code for d in unknown.dropped] == ["cites_unknown_message"]


def test_a_quote_in_no_turn_is_dropped_as_ungrounded(make_message: MakeMessage) -> None:
    batch = [make_message("u1", "I'm a developer.")]
    result = ground([op("name", "John Doe", "u1", "My name is John Doe")], batch)
    assert [d.code for d in result.dropped] == ["ungrounded_quote"]


def test_a_quote_several_turns_hold_goes_to_the_nearest_before_the_cited_turn(
    make_message: MakeMessage,
) -> None:
    batch = [
        make_message("u1", "I love chess."),
        make_message("a1", "Nice.", role="assistant"),
        make_message("u2", "Really, I love chess."),
        make_message("a2", "Got it.", role="assistant"),
    ]
    nearest = ground([op("common_topics", "chess", "a2", "I love chess", "add")], batch)
    assert [o.message_id for o in nearest.operations] == ["u2"]
    unknown = ground([op("common_topics", "chess", "zz", "I love chess", "add")], batch)
    assert [d.code for d in unknown.dropped] == ["cites_unknown_message"]


def test_an_empty_or_retyped_quote_is_stood_in_for_by_the_value(
    make_message: MakeMessage,
) -> None:
    batch = [make_message("u1", "Mostly I write Rust these days.")]
    empty = ground([op("expertise", "Rust", "u1", kind="add")], batch)
    assert [(o.message_id, o.quote) for o in empty.operations] == [("u1", "Rust")]
    assert empty.repaired == []
    retyped = ground([op("expertise", "Rust", "u1", "I program in Rust", "add")], batch)
    assert [r.code for r in retyped.repaired] == ["grounded_by_value"]
    inferred = ground([op("timezone", "Europe/Berlin", "u1", "")], batch)
    assert [d.code for d in inferred.dropped] == ["ungrounded_quote"]


def test_the_roles_that_are_sources_are_the_schemas(make_message: MakeMessage) -> None:
    batch = [make_message("a1", "I am the travel assistant.", role="assistant")]
    quote = "I am the travel assistant"
    assert ground([op("name", "travel", "a1", quote)], batch, ("assistant",)).operations
    assert not ground([op("name", "travel", "a1", quote)], batch).operations


def test_an_uncited_operation_of_a_one_turn_batch_is_that_turns(
    make_message: MakeMessage,
) -> None:
    batch = [make_message("u1", "I'm Alice"), make_message("a1", "Hi!", role="assistant")]
    result = ground([op("name", "Alice", "", "I'm Alice")], batch)
    assert [o.message_id for o in result.operations] == ["u1"] and result.repaired == []


def test_kept_operations_follow_the_order_of_their_turns(make_message: MakeMessage) -> None:
    batch = [
        make_message("u1", "I use Perl a lot."),
        make_message("u2", "Actually I no longer use Perl."),
    ]
    ops = [
        op("expertise", "Perl", "u2", "I no longer use Perl", "remove"),
        op("expertise", "Perl", "u1", "I use Perl a lot", "add"),
    ]
    assert [o.op for o in ground(ops, batch).operations] == ["add", "remove"]
