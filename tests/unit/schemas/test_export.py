"""The shipped JSON Schemas are what the models say, so other languages read the truth."""

import json

import pytest

from schemas.export import CONTRACTS, EXPORT_DIR, render


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_shipped_schema_matches_the_model(name: str) -> None:
    path = EXPORT_DIR / f"{name}.schema.json"
    assert path.exists(), f"{path} missing: run `python -m schemas.export`"
    assert path.read_text() == render(name), (
        f"{path} is stale: run `.venv/bin/python -m schemas.export` and commit the result"
    )


def test_event_schema_uses_the_public_field_names() -> None:
    schema = json.loads(render("profile-event"))
    assert "schema" in schema["properties"] and "schema_id" not in schema["properties"]
    assert set(schema["required"]) >= {"event_id", "type", "user_id", "version", "schema"}


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_each_schema_names_its_dialect_and_a_distinct_id_so_a_registry_takes_it_as_is(
    name: str,
) -> None:
    schema = json.loads((EXPORT_DIR / f"{name}.schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:profile-stream:schema:{name}"
    ids = {json.loads(render(other))["$id"] for other in CONTRACTS}
    assert len(ids) == len(CONTRACTS)
