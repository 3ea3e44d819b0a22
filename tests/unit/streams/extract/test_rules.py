"""The offline demo extractor, end to end through merge."""

from streams.core.merge import merge
from streams.core.profile_schema import ProfileSchema
from streams.extract.rules import RuleExtractor
from tests.unit.helpers import MakeMessage


async def test_seed_scenario_end_to_end(make_message: MakeMessage, schema: ProfileSchema) -> None:
    extractor = RuleExtractor()
    first = make_message("m1", "I'm Alice from California")
    extraction = await extractor.extract({}, [first], schema)
    step1 = merge({}, {}, (), extraction.operations, schema, evidence={"m1": first.sent_at})

    second = make_message("m2", "I speak Spanish too")
    extraction = await extractor.extract(step1.profile, [second], schema)
    step2 = merge(
        step1.profile,
        step1.provenance,
        (),
        extraction.operations,
        schema,
        evidence={"m2": second.sent_at},
    )

    assert step2.profile == schema.empty() | {
        "name": "Alice",
        "location": "California",
        "timezone": "America/Los_Angeles",
        "languages": ["Spanish"],
    }
    assert [c.field for c in step2.changes] == ["languages"]
    assert step2.provenance["name"].message_id == "m1"
    assert step2.provenance["languages"].message_id == "m2"
    assert step1.dropped == step2.dropped == []


async def test_both_messages_in_one_batch(make_message: MakeMessage, schema: ProfileSchema) -> None:
    batch = [
        make_message("m1", "I'm Alice from California"),
        make_message("m2", "I speak Spanish too"),
    ]
    extraction = await RuleExtractor().extract({}, batch, schema)
    result = merge(
        {}, {}, (), extraction.operations, schema, evidence={m.message_id: m.sent_at for m in batch}
    )
    assert result.profile["languages"] == ["Spanish"] and result.profile["name"] == "Alice"
    assert {c.evidence.message_id for c in result.changes} == {"m1", "m2"}


async def test_assistant_and_system_turns_are_ignored(
    make_message: MakeMessage, schema: ProfileSchema
) -> None:
    turns = [
        make_message("a1", "I'm Bob from Tokyo and I speak Japanese", role="assistant"),
        make_message("s1", "My name is Mallory, I live in Paris", role="system"),
    ]
    assert (await RuleExtractor().extract({}, turns, schema)).operations == []


async def test_several_languages_in_one_sentence(
    make_message: MakeMessage, schema: ProfileSchema
) -> None:
    extraction = await RuleExtractor().extract(
        {}, [make_message("m1", "I speak english, French and german")], schema
    )
    assert [op.value for op in extraction.operations] == ["English", "French", "German"]


async def test_unknown_places_give_no_location(
    make_message: MakeMessage, schema: ProfileSchema
) -> None:
    extraction = await RuleExtractor().extract(
        {}, [make_message("m1", "I live in Atlantis")], schema
    )
    assert extraction.operations == []
