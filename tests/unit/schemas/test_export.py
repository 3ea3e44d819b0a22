"""The shipped JSON Schemas are what the models say, so other languages read the truth."""

import json

import pytest

from schemas.export import CONTRACTS, EXPORT_DIR, render


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_shipped_schema_matches_the_model(name: str) -> None:
    path = EXPORT_DIR / f"{name}.schema.json"
    assert path.exists(), f"{path} missing: run `python -m schemas.export`"
    assert path.read_text() == render(CONTRACTS[name]), (
        f"{path} is stale: run `.venv/bin/python -m schemas.export` and commit the result"
    )


def test_event_schema_uses_the_public_field_names() -> None:
    schema = json.loads(render(CONTRACTS["profile-event"]))
    assert "schema" in schema["properties"] and "schema_id" not in schema["properties"]
    assert set(schema["required"]) >= {"event_id", "type", "user_id", "version", "schema"}
