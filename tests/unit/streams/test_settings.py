"""Settings from the environment: prefixes, lists, and errors that name the variable."""

import pytest

from streams.errors import ConfigError
from streams.settings import load_settings

pytestmark = pytest.mark.usefixtures("clean_env")


def test_defaults_work_offline() -> None:
    settings = load_settings()
    assert settings.extractor_kind == "rules"
    assert settings.web_port == 6066 and settings.input_topic == "chat-messages"
    assert settings.read_tokens == () and settings.admin_tokens == ()
    assert settings.command_keys == ()  # commands refused until keys are set


def test_variables_use_the_prefix(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PROFILE_STREAM_PARTITIONS", "12")
    clean_env.setenv("PROFILE_STREAM_INPUT_TOPIC", "chats")
    clean_env.setenv("PARTITIONS", "3")
    settings = load_settings()
    assert (settings.partitions, settings.input_topic) == (12, "chats")


def test_tokens_are_comma_separated(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PROFILE_STREAM_READ_TOKENS", " r1, r2,, ")
    clean_env.setenv("PROFILE_STREAM_ADMIN_TOKENS", "a1")
    settings = load_settings()
    assert [t.get_secret_value() for t in settings.read_tokens] == ["r1", "r2"]
    assert [t.get_secret_value() for t in settings.admin_tokens] == ["a1"]


@pytest.mark.parametrize(
    "variable", ["OPENAI_API_KEY", "PROFILE_STREAM_OPENAI_API_KEY", "OPENAI_BASE_URL"]
)
def test_an_openai_endpoint_picks_the_openai_extractor(
    clean_env: pytest.MonkeyPatch, variable: str
) -> None:
    clean_env.setenv(variable, "sk-test-1234")
    assert load_settings().extractor_kind == "openai"


def test_an_explicit_extractor_wins(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_API_KEY", "sk-test-1234")
    clean_env.setenv("PROFILE_STREAM_EXTRACTOR", "rules")
    assert load_settings().extractor_kind == "rules"


@pytest.mark.parametrize("port", ["abc", "0", "70000", "-1"])
def test_an_invalid_port_names_its_variable(clean_env: pytest.MonkeyPatch, port: str) -> None:
    clean_env.setenv("PROFILE_STREAM_WEB_PORT", port)
    with pytest.raises(ConfigError, match="PROFILE_STREAM_WEB_PORT"):
        load_settings()


def test_openai_without_key_or_base_url_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PROFILE_STREAM_EXTRACTOR", "openai")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY or OPENAI_BASE_URL"):
        load_settings()
    clean_env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    assert load_settings().extractor_kind == "openai"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PROFILE_STREAM_EXTRACTOR", "claude"),
        ("PROFILE_STREAM_LOG_LEVEL", "loud"),
        ("PROFILE_STREAM_PARTITIONS", "0"),
    ],
)
def test_other_bad_values_name_their_variable(
    clean_env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_backoff_ceiling_below_floor_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PROFILE_STREAM_LLM_BACKOFF_S", "5")
    clean_env.setenv("PROFILE_STREAM_LLM_BACKOFF_MAX_S", "1")
    with pytest.raises(ConfigError, match="PROFILE_STREAM_LLM_BACKOFF_MAX_S"):
        load_settings()


def test_a_catch_up_window_not_above_the_coalescing_window_is_refused(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("PROFILE_STREAM_COALESCE_WINDOW_S", "3")
    clean_env.setenv("PROFILE_STREAM_CATCH_UP_WINDOW_S", "2")
    with pytest.raises(ConfigError, match="CATCH_UP_WINDOW_S .2. is not above .*COALESCE_WINDOW_S"):
        load_settings()
    clean_env.setenv("PROFILE_STREAM_CATCH_UP_WINDOW_S", "0")  # off
    assert load_settings().catch_up_window_s == 0


def test_secrets_are_not_shown(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_API_KEY", "sk-live-supersecret")
    clean_env.setenv("PROFILE_STREAM_READ_TOKENS", "read-secret-1")
    clean_env.setenv("PROFILE_STREAM_ADMIN_TOKENS", "admin-secret-1")
    clean_env.setenv("PROFILE_STREAM_COMMAND_KEYS", "command-secret-" + "k" * 32)
    settings = load_settings()
    for shown in (repr(settings), str(settings), str(settings.model_dump())):
        assert (
            "supersecret" not in shown
            and "read-secret" not in shown
            and "admin-secret" not in shown
            and "command-secret" not in shown
        )


def test_command_keys_are_comma_separated_first_one_signs(clean_env: pytest.MonkeyPatch) -> None:
    new, old = "n" * 32, "o" * 40
    clean_env.setenv("PROFILE_STREAM_COMMAND_KEYS", f" {new}, {old} ,")
    settings = load_settings()
    assert [k.get_secret_value() for k in settings.command_keys] == [new, old]


def test_a_short_command_key_fails_naming_the_variable_not_the_key(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("PROFILE_STREAM_COMMAND_KEYS", "a" * 32 + ",short-secret")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "PROFILE_STREAM_COMMAND_KEYS" in message and "key 2 of 2 has 12 bytes" in message
    assert "at least 32" in message and "short-secret" not in message


def test_an_error_does_not_echo_a_secret(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_API_KEY", "sk-live-supersecret")
    clean_env.setenv("PROFILE_STREAM_WEB_PORT", "nope")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "supersecret" not in str(info.value)


def test_broker_url_lists_every_bootstrap_server(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PROFILE_STREAM_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    assert load_settings().broker_url == "kafka://k1:9092;kafka://k2:9092"


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.web_port = 1  # type: ignore[misc]


def test_the_replication_factor_is_the_brokers_unless_set(clean_env: pytest.MonkeyPatch) -> None:
    assert load_settings().replication_factor is None  # the broker's default.replication.factor
    clean_env.setenv("PROFILE_STREAM_REPLICATION_FACTOR", "3")
    assert load_settings().replication_factor == 3


@pytest.mark.parametrize("value", ["0", "-1", "three"])
def test_an_invalid_replication_factor_names_its_variable(
    clean_env: pytest.MonkeyPatch, value: str
) -> None:
    clean_env.setenv("PROFILE_STREAM_REPLICATION_FACTOR", value)
    with pytest.raises(ConfigError, match="PROFILE_STREAM_REPLICATION_FACTOR"):
        load_settings()


def test_a_new_group_starts_at_the_earliest_message_unless_told(
    clean_env: pytest.MonkeyPatch,
) -> None:
    assert load_settings().start_position.mode == "earliest"
    clean_env.setenv("PROFILE_STREAM_START_FROM", "2026-01-31T00:00:00Z")
    settings = load_settings()
    assert settings.start_from == "2026-01-31T00:00:00+00:00"
    assert settings.start_position.at_ms == 1_769_817_600_000


@pytest.mark.parametrize("value", ["yesterday", "2026-01-31", "2999-01-01T00:00:00Z"])
def test_a_bad_start_names_its_variable(clean_env: pytest.MonkeyPatch, value: str) -> None:
    clean_env.setenv("PROFILE_STREAM_START_FROM", value)
    with pytest.raises(ConfigError, match="PROFILE_STREAM_START_FROM"):
        load_settings()


def test_the_group_instance_id_is_optional_and_kept_to_what_kafka_takes(
    clean_env: pytest.MonkeyPatch,
) -> None:
    assert load_settings().group_instance_id is None
    clean_env.setenv("PROFILE_STREAM_GROUP_INSTANCE_ID", "  ")
    assert load_settings().group_instance_id is None
    clean_env.setenv("PROFILE_STREAM_GROUP_INSTANCE_ID", "profile-stream-0")
    assert load_settings().group_instance_id == "profile-stream-0"
    clean_env.setenv("PROFILE_STREAM_GROUP_INSTANCE_ID", "pod/0")
    with pytest.raises(ConfigError, match="PROFILE_STREAM_GROUP_INSTANCE_ID"):
        load_settings()


def test_input_framing_is_off_unless_asked_for(clean_env: pytest.MonkeyPatch) -> None:
    assert load_settings().input_framing == "none"
    clean_env.setenv("PROFILE_STREAM_INPUT_FRAMING", "AUTO")
    assert load_settings().input_framing == "auto"
    clean_env.setenv("PROFILE_STREAM_INPUT_FRAMING", "avro")
    with pytest.raises(ConfigError, match="PROFILE_STREAM_INPUT_FRAMING"):
        load_settings()


def test_the_processing_guarantee_is_exactly_once_unless_asked_otherwise(
    clean_env: pytest.MonkeyPatch,
) -> None:
    assert load_settings().processing_guarantee == "exactly_once"
    clean_env.setenv("PROFILE_STREAM_PROCESSING_GUARANTEE", "AT_LEAST_ONCE")
    assert load_settings().processing_guarantee == "at_least_once"
    clean_env.setenv("PROFILE_STREAM_PROCESSING_GUARANTEE", "at_most_once")
    with pytest.raises(ConfigError, match="PROFILE_STREAM_PROCESSING_GUARANTEE"):
        load_settings()
