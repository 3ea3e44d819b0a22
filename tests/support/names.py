"""Names and ports of one run: a unique app id with its topics (:class:`Names`), a free TCP
port, and the environment without any ``PROFILE_STREAM_*`` or ``OPENAI_*`` setting."""

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Self

from pydantic import SecretStr

from streams.core.signing import CommandSigning

__all__ = ["Names", "clean_environ", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_environ() -> dict[str, str]:
    """This process's environment without profile-stream's and the OpenAI SDK's settings, so a
    child process gets only the settings it is given."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PROFILE_STREAM_", "OPENAI_"))}


@dataclass(frozen=True)
class Names:
    """One run's own app id (which is also its consumer group) and the topics named after it."""

    prefix: str
    partitions: int = 4

    @classmethod
    def unique(cls, *parts: str, digits: int = 10, partitions: int = 4) -> Self:
        """Names under ``<parts>-<random hex digits>``, e.g. ``it-3f9a0c1b2d``."""
        return cls("-".join((*parts, uuid.uuid4().hex[:digits])), partitions)

    @property
    def input(self) -> str:
        return f"{self.prefix}-chat"

    @property
    def output(self) -> str:
        return f"{self.prefix}-updated"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}-dlq"

    @property
    def changelog(self) -> str:
        return f"{self.prefix}-profiles-changelog"

    @property
    def buffer_changelog(self) -> str:
        """The changelog of the users' buffered messages (docs/state.md)."""
        return f"{self.prefix}-profiles-buffers-changelog"

    @property
    def command_key(self) -> str:
        """This run's key for signing operator commands (``PROFILE_STREAM_COMMAND_KEYS``): the
        workers and the CLI of a run share it, and no other run's command verifies."""
        return f"test-command-key-{self.prefix}".ljust(32, "0")

    @property
    def command_signing(self) -> CommandSigning:
        """How this run's admin tools sign a command, for its workers (its key and audience)."""
        return CommandSigning((SecretStr(self.command_key),), self.input)

    def env(self) -> dict[str, str]:
        """The settings that put a worker (or the CLI) on these names, with the run's key."""
        return {
            "PROFILE_STREAM_COMMAND_KEYS": self.command_key,
            "PROFILE_STREAM_APP_ID": self.prefix,
            "PROFILE_STREAM_INPUT_TOPIC": self.input,
            "PROFILE_STREAM_OUTPUT_TOPIC": self.output,
            "PROFILE_STREAM_DLQ_TOPIC": self.dlq,
            "PROFILE_STREAM_PARTITIONS": str(self.partitions),
        }
