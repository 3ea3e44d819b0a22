"""The contracts' JSON Schemas, for producers and consumers in other languages.

``python -m schemas.export`` rewrites the files in ``schemas/jsonschema/``; a unit test fails
when they drift from the models.
"""

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .events import DeadLetter, ProfileEvent
from .messages import ChatMessage, ProfileCommand
from .patch import ProfilePatch
from .profile import UserProfile

__all__ = ["CONTRACTS", "EXPORT_DIR", "render", "write"]

EXPORT_DIR = Path(__file__).resolve().parent / "jsonschema"
CONTRACTS: dict[str, type[BaseModel]] = {
    "chat-message": ChatMessage,
    "profile-command": ProfileCommand,
    "profile-event": ProfileEvent,
    "profile-patch": ProfilePatch,
    "dead-letter": DeadLetter,
    "user-profile": UserProfile,
}


def render(model: type[BaseModel]) -> str:
    """The schema as written to disk: stable key order, a trailing newline."""
    schema: dict[str, Any] = model.model_json_schema(by_alias=True, mode="serialization")
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path = EXPORT_DIR) -> list[Path]:
    """Write every contract's schema to ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in CONTRACTS.items():
        path = directory / f"{name}.schema.json"
        path.write_text(render(model))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write():
        sys.stdout.write(f"wrote {written}\n")
