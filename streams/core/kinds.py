"""Profile kinds: the user's own profile, and profiles of what messages are about (a team, a
role, the assistant itself), each with its schema, instructions and subject. Pure.

Declared in one TOML file (``PROFILE_STREAM_KINDS_FILE``); without one a deployment has the
single ``user`` kind, so nothing changes for it::

    [kinds.team]
    schema = "mypkg.profiles:TeamProfile"    # or a JSON Schema file, e.g. "team.schema.json"
    subject = "metadata.team_id"          # or "user_id", or "fixed:<id>"
    instructions = "one team of the company, from what its members say about it"
    source_roles = ["user"]               # whose turns are facts ("assistant" for the assistant)
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import ChatMessage
from streams.core.profile_schema import ProfileSchema, load_profile_schema
from streams.errors import ConfigError

__all__ = ["USER", "Kind", "load_kinds"]

USER = "user"
_SETTING = "PROFILE_STREAM_KINDS_FILE"
_ROLES = {"user", "assistant", "system"}


@dataclass(frozen=True)
class Kind:
    """One kind of profile: what it is keyed by and how it is extracted."""

    name: str
    schema: ProfileSchema
    subject: str = "user_id"

    @property
    def is_user(self) -> bool:
        """The user's own profile: keyed by user id on the input topic itself."""
        return self.name == USER

    def subject_of(self, message: ChatMessage) -> str | None:
        """The profile this message updates in this kind, or None if it names none."""
        if self.subject == "user_id":
            return message.user_id
        if self.subject.startswith("fixed:"):
            return self.subject.removeprefix("fixed:")
        value = message.metadata.get(self.subject.removeprefix("metadata."))
        return value if isinstance(value, str) and 0 < len(value) <= 256 else None

    def topic(self, app_id: str, input_topic: str) -> str:
        """Where this kind's messages are read: the input itself for users, else a topic of
        its own where they are keyed by subject."""
        return input_topic if self.is_user else f"{app_id}-kind-{self.name}"

    def event_key(self, subject: str) -> bytes:
        """The key of this kind's events: the plain user id for users, else ``kind/subject``."""
        return subject.encode() if self.is_user else f"{self.name}/{subject}".encode()


def _declared_kind(name: str, spec: dict[str, Any], base: Path) -> Kind:
    """The kind one ``[kinds.<name>]`` table declares; ConfigError names what is wrong."""
    where = f"{_SETTING}: [kinds.{name}]"
    subject = str(spec.get("subject", "user_id"))
    if not (subject == "user_id" or subject.startswith(("metadata.", "fixed:"))):
        raise ConfigError(f"{where} subject={subject!r}: use user_id, metadata.<key> or fixed:<id>")
    roles = tuple(spec.get("source_roles", ["user"]))
    if not roles or set(roles) - _ROLES:
        raise ConfigError(f"{where} source_roles={list(roles)}: choose from {sorted(_ROLES)}")
    if "schema" not in spec:
        raise ConfigError(f"{where} needs schema = 'package.module:ClassName'")
    if name == USER and (subject != "user_id" or spec.get("instructions")):
        raise ConfigError(
            f"{where}: the user kind is keyed by user_id and uses the built-in instructions"
        )
    schema_ref = str(spec["schema"])
    if schema_ref.endswith(".json"):  # a JSON Schema file, relative to the kinds file
        schema_ref = str(base / schema_ref)
    schema = load_profile_schema(
        schema_ref,
        setting=f"{where} schema",
        instructions=str(spec.get("instructions", "")),
        source_roles=roles,
    )
    return Kind(name, schema, subject)


def load_kinds(path: Path | None, user_model: str) -> list[Kind]:
    """The kinds of a deployment; the user kind always comes first."""
    user = Kind(USER, load_profile_schema(user_model))
    if path is None:
        return [user]
    try:
        declared = tomllib.loads(path.read_text()).get("kinds", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{_SETTING}={str(path)!r} cannot be read: {exc}") from exc
    base = path.parent
    kinds = [_declared_kind(name, spec, base) for name, spec in declared.items() if name != USER]
    if USER in declared:
        user = _declared_kind(USER, declared[USER], base)
    for kind in kinds:
        if not kind.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(
                f"{_SETTING}: kind name {kind.name!r} must be letters, digits, '-' or '_'"
            )
    return [user, *kinds]
