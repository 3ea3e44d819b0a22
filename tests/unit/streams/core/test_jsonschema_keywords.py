"""Each JSON Schema keyword a profile file may hold is enforced (a value that fits is kept, one
that does not is refused with the keyword's reason), or the file is refused at start naming the
keyword and where it is."""

import json
from pathlib import Path
from typing import Any

import pytest

from streams.core.corrections import parse_correction
from streams.core.profile_schema import FieldSpec, ProfileSchema, load_profile_schema
from streams.errors import ConfigError


def load(tmp_path: Path, properties: dict[str, Any], **root: Any) -> ProfileSchema:
    path = tmp_path / "p.schema.json"
    path.write_text(json.dumps({"type": "object", "properties": properties, **root}))
    return load_profile_schema(str(path))


def field(tmp_path: Path, spec: dict[str, Any]) -> FieldSpec:
    return load(tmp_path, {"p": spec}).fields["p"]


STRING = {"type": "string"}
NUMBER = {"type": "number"}
INTEGER = {"type": "integer"}
UUID = "123e4567-e89b-12d3-a456-426614174000"

# keyword, property, a value it accepts, a value it refuses, words of the refusal
SCALAR_CASES = [
    ("pattern", STRING | {"pattern": "^[A-Z]+$"}, "ABC", "lower", "pattern"),
    ("pattern unanchored", STRING | {"pattern": "[0-9]"}, "a1b", "abc", "pattern"),
    ("minLength", STRING | {"minLength": 2}, "ab", "a", "at least 2"),
    ("maxLength", STRING | {"maxLength": 3}, "abc", "abcd", "at most 3"),
    (
        "format date-time",
        STRING | {"format": "date-time"},
        "2026-05-01T10:00:00Z",
        "2026-05-01",
        "date-time",
    ),
    ("format date", STRING | {"format": "date"}, "2026-05-01", "1 May 2026", "format date"),
    ("format time", STRING | {"format": "time"}, "10:00:00+02:00", "10:00", "format time"),
    ("format email", STRING | {"format": "email"}, "ana@example.com", "ana at example", "email"),
    ("format uri", STRING | {"format": "uri"}, "https://example.com/a", "example com", "uri"),
    ("format uuid", STRING | {"format": "uuid"}, UUID, "123e4567", "UUID"),
    ("format ipv4", STRING | {"format": "ipv4"}, "10.0.0.1", "10.0.0.256", "ipv4"),
    ("format ipv6", STRING | {"format": "ipv6"}, "::1", "10.0.0.1", "ipv6"),
    ("minimum", INTEGER | {"minimum": 0}, 0, -1, "greater than or equal to 0"),
    ("maximum", INTEGER | {"maximum": 10}, 10, 11, "less than or equal to 10"),
    ("exclusiveMinimum", NUMBER | {"exclusiveMinimum": 0}, 0.5, 0, "greater than 0"),
    ("exclusiveMaximum", NUMBER | {"exclusiveMaximum": 1}, 0.99, 1, "less than 1"),
    (
        "exclusiveMinimum, draft 4",
        INTEGER | {"minimum": 0, "exclusiveMinimum": True},
        1,
        0,
        "greater than 0",
    ),
    ("multipleOf", INTEGER | {"multipleOf": 5}, 15, 7, "multiple of 5"),
    ("multipleOf, decimal", NUMBER | {"multipleOf": 0.1}, 0.3, 0.25, "multiple of 0.1"),
    ("enum", {"enum": ["a", "b"]}, "a", "z", "'a' or 'b'"),
    ("const", {"const": "x"}, "x", "y", "'x'"),
]


@pytest.mark.parametrize(
    ("spec", "good", "bad", "reason"),
    [case[1:] for case in SCALAR_CASES],
    ids=[case[0] for case in SCALAR_CASES],
)
def test_a_scalar_keyword_keeps_what_fits_and_refuses_what_does_not(
    tmp_path: Path, spec: dict[str, Any], good: Any, bad: Any, reason: str
) -> None:
    checked = field(tmp_path, spec)
    assert checked.check(good) == good  # kept as written: a date-time stays a string
    with pytest.raises(ValueError, match=reason):
        checked.check(bad)


LIST = {"type": "array", "items": STRING}
LIST_CASES = [
    ("minItems", LIST | {"minItems": 2, "default": ["a", "b"]}, ["a", "c"], ["a"], "at least 2"),
    ("maxItems", LIST | {"maxItems": 2}, ["a", "b"], ["a", "b", "c"], "at most 2"),
    ("uniqueItems", LIST | {"uniqueItems": True}, ["a", "b"], ["a", "a"], "same item twice"),
    (
        "uniqueItems, JSON equality",
        {"type": "array", "items": {"type": "number"}} | {"uniqueItems": True},
        [1, 2.5],
        [1, 1.0],
        "same item twice",
    ),
    (
        "items' pattern",
        {"type": "array", "items": STRING | {"pattern": "^[A-Z]+$"}},
        ["AB"],
        ["AB", "cd"],
        "pattern",
    ),
]


@pytest.mark.parametrize(
    ("spec", "good", "bad", "reason"),
    [case[1:] for case in LIST_CASES],
    ids=[case[0] for case in LIST_CASES],
)
def test_an_array_keyword_keeps_what_fits_and_refuses_what_does_not(
    tmp_path: Path, spec: dict[str, Any], good: list[Any], bad: list[Any], reason: str
) -> None:
    checked = field(tmp_path, spec)
    assert checked.is_list and checked.check(good) == good
    with pytest.raises(ValueError, match=reason):
        checked.check(bad)


def test_an_item_is_checked_on_its_own_against_the_items_keywords(tmp_path: Path) -> None:
    checked = field(tmp_path, {"type": "array", "items": STRING | {"maxLength": 2}})
    assert checked.check_item("ab") == "ab"
    with pytest.raises(ValueError, match="at most 2"):
        checked.check_item("abc")


def test_the_seed_case_an_upper_case_pattern_refuses_lower_in_an_operators_correction(
    tmp_path: Path,
) -> None:
    schema = load(tmp_path, {"code": STRING | {"pattern": "^[A-Z]+$"}})
    ok = parse_correction(
        b'{"operations": [{"field": "code", "op": "set", "value": "AB"}]}', "u", schema
    )
    assert ok.operations[0].value == "AB"
    with pytest.raises(ValueError, match="pattern"):
        parse_correction(
            b'{"operations": [{"field": "code", "op": "set", "value": "lower"}]}', "u", schema
        )


def test_descriptions_titles_examples_and_x_keywords_only_describe(tmp_path: Path) -> None:
    spec = STRING | {"title": "T", "description": "D", "examples": ["e"], "x-ui": "wide"}
    assert field(tmp_path, spec).check("anything") == "anything"
    schema = load(tmp_path, {"p": STRING}, title="Mine", **{"$schema": "x", "x-owner": "me"})
    assert schema.schema_id == "Mine/v1"


def test_an_unknown_keyword_is_refused_at_start_with_its_name_and_place(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, {"tags": {"type": "array", "items": STRING, "contains": {"const": "a"}}})
    message = str(refused.value)
    assert "PROFILE_STREAM_PROFILE_MODEL=" in message and "p.schema.json" in message
    assert "/properties/tags/contains: keyword 'contains' is not enforced" in message


REFUSED_AT_START = [
    (
        "a keyword of another type",
        {"p": INTEGER | {"minLength": 1}},
        "/properties/p/minLength: 'minLength' applies to strings, not to integer",
    ),
    (
        "a format not enforced",
        {"p": STRING | {"format": "hostname"}},
        "/properties/p/format: format 'hostname' is not enforced",
    ),
    (
        "a look-around pattern",
        {"p": STRING | {"pattern": "(?<=a)b"}},
        "/properties/p/pattern: pattern '(?<=a)b' cannot be used",
    ),
    (
        "a keyword beside enum",
        {"p": {"enum": ["a"], "maxLength": 3}},
        "/properties/p/maxLength: 'maxLength' beside 'enum'",
    ),
    (
        "a negative length",
        {"p": STRING | {"maxLength": -1}},
        "/properties/p/maxLength: maxLength must be a whole number >= 0",
    ),
    (
        "multipleOf 0",
        {"p": NUMBER | {"multipleOf": 0}},
        "/properties/p/multipleOf: multipleOf must be greater than 0",
    ),
    (
        "an empty default under minItems",
        {"p": LIST | {"minItems": 1}},
        "/properties/p/default: the default [] breaks the property's own rules",
    ),
    (
        "a default the pattern refuses",
        {"p": STRING | {"pattern": "^[A-Z]+$", "default": "x"}},
        "/properties/p/default: the default 'x' breaks",
    ),
    (
        "an item keyword in the wrong place",
        {"p": LIST | {"pattern": "a"}},
        "/properties/p/pattern: 'pattern' applies to strings, not to array",
    ),
    (
        "an unknown keyword in items",
        {"p": {"type": "array", "items": STRING | {"not": {}}}},
        "/properties/p/items/not: keyword 'not' is not enforced",
    ),
    (
        "a slash in a name",
        {"a/b": STRING | {"oneOf": []}},
        "/properties/a~1b/oneOf: keyword 'oneOf'",
    ),
]


@pytest.mark.parametrize(
    ("properties", "words"),
    [case[1:] for case in REFUSED_AT_START],
    ids=[case[0] for case in REFUSED_AT_START],
)
def test_what_cannot_be_enforced_is_refused_at_start(
    tmp_path: Path, properties: dict[str, Any], words: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, properties)
    assert words in str(refused.value)


@pytest.mark.parametrize(
    ("root", "words"),
    [
        ({"allOf": []}, "/allOf: keyword 'allOf' is not enforced"),
        ({"additionalProperties": True}, "/additionalProperties: a profile refuses fields"),
        ({"required": ["nope"]}, "/required: names no property: ['nope']"),
    ],
)
def test_root_keywords_that_cannot_be_enforced_are_refused(
    tmp_path: Path, root: dict[str, Any], words: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, {"p": STRING}, **root)
    assert words in str(refused.value)
