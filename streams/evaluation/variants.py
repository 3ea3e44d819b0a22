"""The configurations an evaluation compares: ``--variant NAME:KEY=VALUE,KEY=VALUE``.

A key is ``mode`` (direct, pipeline), ``flush`` (buffered, per-message), ``guards`` (on, off)
or any worker setting, by its name without the ``PROFILE_STREAM_`` prefix in any case
(``model``, ``max_batch_messages``, ``openai_base_url``...). ``per-message`` is the worker with
``FLUSH_IDLE_S=0`` and ``MAX_BATCH_MESSAGES=1``: every message extracted alone, as it comes.
``guards=off`` is the evaluation's own, never a worker setting: a direct run that merges the
model's operations without the quality guards, to measure what the guards do.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

from streams.errors import ConfigError
from streams.settings import Settings, load_settings

__all__ = ["Flush", "Mode", "Variant", "parse_variant", "settings_of", "worker_env"]

Mode = Literal["direct", "pipeline"]
Flush = Literal["buffered", "per-message"]
_PER_MESSAGE = {"flush_idle_s": "0", "max_batch_messages": "1"}
# The settings the OpenAI SDK reads under its own names too (Settings' aliases).
_SDK_NAMES = {"openai_base_url": "OPENAI_BASE_URL", "openai_api_key": "OPENAI_API_KEY"}


@dataclass(frozen=True)
class Variant:
    """One configuration: how it runs, how it flushes, and the settings it changes."""

    name: str
    mode: Mode = "direct"
    flush: Flush = "buffered"
    overrides: Mapping[str, str] = field(default_factory=dict)
    #: False: the model's operations merged without the quality guards (direct runs only).
    guards: bool = True

    @property
    def settings(self) -> dict[str, str]:
        """Every setting this variant changes, those its flush mode implies included."""
        implied = _PER_MESSAGE if self.flush == "per-message" else {}
        return {**implied, **self.overrides}


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"--variant {key}={value!r}: choose one of {', '.join(allowed)}")
    return value


def parse_variant(spec: str, *, mode: Mode, flush: Flush) -> Variant:
    """``NAME:KEY=VALUE,...`` (``mode`` and ``flush`` are the defaults it may change).

    Raises:
        ConfigError: no name, a pair without ``=``, an unknown setting or a bad choice.
    """
    name, _, pairs = spec.partition(":")
    if not name.strip():
        raise ConfigError(f"--variant {spec!r}: give it a name, as NAME:KEY=VALUE,...")
    overrides: dict[str, str] = {}
    guards = "on"
    for pair in filter(None, (p.strip() for p in pairs.split(","))):
        key, eq, value = pair.partition("=")
        key = key.strip().lower().removeprefix("profile_stream_")
        if not eq:
            raise ConfigError(f"--variant {spec!r}: {pair!r} is not KEY=VALUE")
        if key == "mode":
            mode = cast(Mode, _choice(key, value.strip(), get_args(Mode)))
        elif key == "flush":
            flush = cast(Flush, _choice(key, value.strip(), get_args(Flush)))
        elif key == "guards":
            guards = _choice(key, value.strip(), ("on", "off"))
        elif key in Settings.model_fields:
            overrides[key] = value.strip()
        else:
            raise ConfigError(f"--variant {spec!r}: {key!r} is not a setting of the worker")
    if guards == "off" and mode != "direct":
        raise ConfigError(
            f"--variant {spec!r}: guards=off runs in direct mode only (the worker always guards)"
        )
    return Variant(name.strip(), mode, flush, overrides, guards=guards == "on")


def settings_of(variant: Variant, base: Mapping[str, str]) -> Settings:
    """The settings a direct run of ``variant`` uses: the environment, ``base`` (the command's
    options) and the variant's own over them."""
    return load_settings(**{**base, **variant.settings})


def worker_env(variant: Variant, base: Mapping[str, str]) -> dict[str, str]:
    """The variables that give a worker ``base`` and the variant's settings."""
    merged = {**base, **variant.settings}
    return {_SDK_NAMES.get(k, "PROFILE_STREAM_" + k.upper()): v for k, v in merged.items()}
