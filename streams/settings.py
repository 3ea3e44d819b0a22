"""The one settings object: read from the environment once, frozen, checked at start."""

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from streams.core.signing import CommandSigning
from streams.core.start_position import StartFrom
from streams.errors import ConfigError
from streams.kafka_security import KafkaConnection

__all__ = ["MIN_COMMAND_KEY_BYTES", "Settings", "load_settings"]

_PREFIX = "PROFILE_STREAM_"

# Kafka's own rule for a group.instance.id (and a topic name): it refuses anything else.
_KAFKA_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")

#: The shortest command key accepted: an HMAC-SHA256 key should hold 256 bits.
MIN_COMMAND_KEY_BYTES = 32


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


Tokens = Annotated[tuple[SecretStr, ...], NoDecode]


class Settings(BaseSettings):
    """Every knob of a worker and of the CLI. Environment names are ``PROFILE_STREAM_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=_PREFIX, frozen=True, extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    # Kafka security, the same for the worker, the CLI and the client (streams.kafka_security);
    # combinations are checked there, each error names the variable.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: (
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None
    ) = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_check_hostname: bool = True
    kafka_oauth_token_provider: str | None = None
    # A secret: a rediss://:password@host URL carries the password.
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    redis_ssl_cafile: Path | None = None
    app_id: str = "profile-stream"
    input_topic: str = "chat-messages"
    output_topic: str = "profile-updated"
    dlq_topic: str = "chat-messages-dlq"
    partitions: int = Field(8, ge=1, le=1024)
    standby_replicas: int = Field(1, ge=0, le=8)
    # Restore table partitions with a consumer of our own writing RocksDB batches, before
    # Faust's per-record recovery reads what is left (streams.faust_glue.recovery).
    restore_in_bulk: bool = True
    # None: the broker's default.replication.factor, for every topic the worker creates (a
    # managed cluster's is 3; the local single-broker stack's 1).
    replication_factor: int | None = Field(None, ge=1, le=16)
    session_timeout_s: float = Field(30.0, ge=6, le=300)
    # exactly_once: Kafka transactions fence a worker that lost its partitions while frozen;
    # at_least_once fences within each process only (docs/state.md, "Zombie workers": the
    # decision and its cost).
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "exactly_once"
    # Where a new consumer group starts on the input topic (streams.core.start_position):
    # earliest, latest or an RFC 3339 time. Only partitions without a committed offset.
    start_from: str = "earliest"
    # Static group membership (KIP-345): a worker restarted under the same id within the
    # session timeout gets its partitions back without a rebalance. One per worker (pod name).
    group_instance_id: str | None = None
    # Values framed by a Confluent Schema Registry serializer (magic byte 0, schema id):
    # none refuses them, confluent requires the frame, auto strips it when present.
    input_framing: Literal["none", "confluent", "auto"] = "none"
    web_host: str = "127.0.0.1"
    web_bind: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    data_dir: Path = Path(".profile-stream/worker")  # replaced below: one folder per web port
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    read_tokens: Tokens = ()
    admin_tokens: Tokens = ()
    # Operator commands on the input topic are signed with the first and verified with any
    # (streams.core.signing). None set: workers refuse every command, admin tools cannot send.
    command_keys: Tokens = ()
    # The deployment a command's signature names ("": the app id and input topic). Give staging
    # and production different ones: a command signed for one is then refused by the other.
    command_audience: str = ""
    # How long after it was signed a worker still applies a command (a replay after that is
    # refused; one that waited longer in Kafka is dead-lettered and `dlq replay` signs it again).
    command_max_age_s: float = Field(3600.0, gt=0, le=7 * 86_400)
    max_request_bytes: int = Field(65_536, ge=1_024)
    # A view request forwarded to the partition's owner: below the client's 10 s, so the client
    # hears 504 from the worker rather than timing out itself.
    proxy_timeout_s: float = Field(5.0, gt=0, le=60)
    # Reads waiting on this worker for a message to be reflected (?wait_for) or for a refresh
    # (streams.pipeline.read_your_writes); one more is answered 503 at once.
    max_waiting_reads: int = Field(1000, ge=1)
    extractor: Literal["openai", "rules"] | None = None
    model: str = "gpt-4o-mini"
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", _PREFIX + "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("OPENAI_BASE_URL", _PREFIX + "OPENAI_BASE_URL")
    )
    llm_requests_per_min: float = Field(0, ge=0)
    llm_tokens_per_min: float = Field(0, ge=0)
    # The burst, in seconds of the per-minute budgets: spent at once after an idle spell.
    llm_burst_s: float = Field(10.0, gt=0, le=60)
    llm_timeout_s: float = Field(30.0, gt=0)
    # The longest answer we pay for: about 20 operations with short quotes (12 with
    # 200-character ones). Real answers measured far below it (Qwen2.5-Coder 0.5B: 143 to 869
    # tokens) unless the model loops, and a loop costs the whole bound (minutes on a CPU). A
    # cut-off answer keeps its complete operations (streams.extract.repair).
    llm_max_output_tokens: int = Field(1024, ge=16, le=131_072)
    # ``max_tokens`` is what llama.cpp, vLLM, Ollama and most gateways read; OpenAI's reasoning
    # models accept only ``max_completion_tokens``.
    llm_max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    llm_max_attempts: int = Field(4, ge=1, le=20)
    llm_backoff_s: float = Field(0.5, ge=0)
    llm_backoff_max_s: float = Field(20.0, ge=0)
    max_content_chars: int = Field(8_000, ge=1)
    max_in_flight: int = Field(64, ge=1, le=4096)
    # The read-ahead: a backlog's messages of one user share calls only if they are held at once
    # (the figures behind the default: bench/README.md, "Why these defaults").
    max_pending: int = Field(16384, ge=1)
    # The read-ahead in bytes of the held records, for the whole worker (shared by its kinds):
    # a held record costs about 3-4 times its size once decoded, so 64 MiB stays far below a
    # 1 GiB pod with the worker's own ~300 MB (README, "Memory").
    max_pending_bytes: int = Field(64 * 1024 * 1024, ge=64 * 1024)
    # On revoke, how long running batches of the revoked partitions may finish (and publish)
    # before they are cancelled; the whole group waits this long at most per rebalance.
    revoke_grace_s: float = Field(5.0, ge=0, le=60)
    coalesce_window_s: float = Field(0.5, ge=0)
    catch_up_window_s: float = Field(2.0, ge=0)
    max_batch_messages: int = Field(20, ge=1, le=500)
    max_batch_chars: int = Field(12_000, ge=1)
    max_future_skew_s: float = Field(300.0, ge=0)
    # Calls a flush may add to ask again the user turns after the last one a call's operations
    # cite (streams.core.coverage): a small model stops after a batch's first turns.
    follow_up_calls: int = Field(0, ge=0, le=50)
    # One call per user turn of a flush, the flush's earlier messages as context only.
    extract_per_turn: bool = False
    # Buffered flushes (streams.core.flushing): a user's messages wait in the user's record
    # until the conversation is idle this long (0: every batch is extracted as it comes), or
    # the oldest waited FLUSH_MAX_AGE_S; figures behind the defaults: bench/README.md.
    flush_idle_s: float = Field(60.0, ge=0, le=86_400)
    flush_max_age_s: float = Field(600.0, gt=0, le=7 * 86_400)
    # How often the worker looks for buffers that are due (bounds a flush's lateness).
    flush_tick_s: float = Field(0.5, gt=0, le=60)
    # Prompt + completion tokens one profile may spend per UTC day (0: no budget); over it,
    # a user's messages keep buffering (up to MAX_BUFFERED_MESSAGES) until the next day.
    user_daily_tokens: int = Field(0, ge=0)
    max_buffered_messages: int = Field(200, ge=1, le=10_000)
    profile_model: str = "schemas.profile:UserProfile"
    # Revisions kept per profile field (streams.core.history), the oldest dropped first; 0 keeps
    # none. 10 keeps a default UserProfile's record under 64 KiB with ordinary values and under
    # 1 MB (the producer's request size, which every changelog write must fit) with every list
    # at its longest (bench/README.md, "History").
    revisions_per_field: int = Field(10, ge=0, le=100)
    kinds_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _data_dir_per_port(cls, data: object) -> object:
        # Two workers on one host differ by port; a shared data dir would corrupt RocksDB.
        if isinstance(data, dict) and not data.get("data_dir"):
            return {**data, "data_dir": f".profile-stream/worker-{data.get('web_port', 6066)}"}
        return data

    @field_validator("read_tokens", "admin_tokens", "command_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @field_validator("start_from")
    @classmethod
    def _start_from(cls, value: str) -> str:
        return str(StartFrom.parse(value))

    @field_validator("group_instance_id", mode="before")
    @classmethod
    def _group_instance_id(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip() or None
        if isinstance(value, str) and not _KAFKA_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r}: Kafka takes only letters, digits, '.', '_' and '-', 249 at most"
            )
        return value

    @field_validator("input_framing", "processing_guarantee", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.extractor == "openai" and not (self.openai_api_key or self.openai_base_url):
            raise ValueError(
                "PROFILE_STREAM_EXTRACTOR=openai needs OPENAI_API_KEY or OPENAI_BASE_URL; "
                "set one, or use PROFILE_STREAM_EXTRACTOR=rules"
            )
        if self.llm_backoff_max_s < self.llm_backoff_s:
            raise ValueError(
                "PROFILE_STREAM_LLM_BACKOFF_MAX_S is below PROFILE_STREAM_LLM_BACKOFF_S"
            )
        if self.flush_max_age_s < self.flush_idle_s:
            raise ValueError(
                f"PROFILE_STREAM_FLUSH_MAX_AGE_S ({self.flush_max_age_s:g}) is below "
                f"PROFILE_STREAM_FLUSH_IDLE_S ({self.flush_idle_s:g}): a buffer would be "
                "flushed by age before it could ever be idle; raise the age or lower the idle"
            )
        if 0 < self.catch_up_window_s <= self.coalesce_window_s:
            raise ValueError(
                f"PROFILE_STREAM_CATCH_UP_WINDOW_S ({self.catch_up_window_s:g}) is not above "
                f"PROFILE_STREAM_COALESCE_WINDOW_S ({self.coalesce_window_s:g}); set it above, "
                "or to 0 to wait only the coalescing window while catching up"
            )
        return self

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().upper() or None
        return value

    @model_validator(mode="after")
    def _check_kafka(self) -> "Settings":
        try:
            self.kafka.ssl_context  # noqa: B018 - built (and checked) once, at load
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        if self.redis_ssl_cafile is not None and not self.redis_ssl_cafile.is_file():
            raise ValueError(f"{_PREFIX}REDIS_SSL_CAFILE={self.redis_ssl_cafile} does not exist")
        return self

    @model_validator(mode="after")
    def _check_command_keys(self) -> "Settings":
        for number, key in enumerate(self.command_keys, 1):
            size = len(key.get_secret_value().encode())
            if size < MIN_COMMAND_KEY_BYTES:
                raise ValueError(
                    f"{_PREFIX}COMMAND_KEYS: key {number} of {len(self.command_keys)} has {size} "
                    f"bytes; each key needs at least {MIN_COMMAND_KEY_BYTES} "
                    "(make one with `openssl rand -hex 32`)"
                )
        return self

    @property
    def extractor_kind(self) -> Literal["openai", "rules"]:
        """The extractor in use: the one asked for, else ``openai`` when an endpoint is set."""
        if self.extractor:
            return self.extractor
        return "openai" if (self.openai_api_key or self.openai_base_url) else "rules"

    @cached_property
    def kafka(self) -> KafkaConnection:
        """The bootstrap servers and their security, as every Kafka client here takes them."""
        return KafkaConnection(
            bootstrap=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
            ssl_check_hostname=self.kafka_ssl_check_hostname,
            oauth_token_provider=self.kafka_oauth_token_provider,
        )

    @cached_property
    def command_signing(self) -> CommandSigning:
        """What signs and verifies operator commands here (streams.core.signing)."""
        return CommandSigning(
            keys=self.command_keys,
            # Not the app id: a new app rebuilding profiles from the same input must honour its
            # commands. Deployments sharing a topic name and keys set an audience each.
            audience=self.command_audience or self.input_topic,
            max_age_s=self.command_max_age_s,
            max_ahead_s=self.max_future_skew_s,
        )

    @cached_property
    def start_position(self) -> StartFrom:
        """Where a new consumer group starts on the input topic."""
        return StartFrom.parse(self.start_from)

    @property
    def broker_url(self) -> str:
        """The bootstrap servers in Faust's URL form."""
        return ";".join(f"kafka://{host}" for host in self.kafka_bootstrap.split(","))


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; a bad value raises :class:`ConfigError` naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(_describe(err["loc"], err["msg"]) for err in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from exc


def _describe(loc: tuple[int | str, ...], msg: str) -> str:
    if not loc:
        return msg.removeprefix("Value error, ")
    return f"{_PREFIX}{'_'.join(str(part) for part in loc).upper()}: {msg}"
