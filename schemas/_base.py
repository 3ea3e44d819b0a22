"""Model bases shared by every contract: frozen, strict about what we produce."""

from pydantic import BaseModel, ConfigDict

__all__ = ["Produced", "Consumed"]


class Produced(BaseModel):
    """A contract profile-stream writes: unknown fields are a bug, so they are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Consumed(BaseModel):
    """A contract other systems write: unknown fields are ignored so producers can evolve."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
