"""A client's configuration from the PROFILE_STREAM_* variables the CLI and the workers read:
what each gives, what arguments override, and a malformed one named."""

from pathlib import Path

import pytest

from streams.client import AsyncProfileStreamClient, ClientConfig, ConfigError, KafkaConnection


def test_nothing_set_is_the_local_worker_and_kafka(clean_env: pytest.MonkeyPatch) -> None:
    config = ClientConfig.from_env()
    assert (config.url, config.token, config.admin_token) == ("http://127.0.0.1:6066", "", "")
    assert config.kafka == KafkaConnection()
    assert (config.input_topic, config.events_topic) == ("chat-messages", "profile-updated")
    assert config.ssl_context() is None


def test_the_variables_configure_every_part(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    env = {
        "PROFILE_STREAM_URL": "https://profiles.internal:8443",
        "PROFILE_STREAM_TOKEN": "r1",
        "PROFILE_STREAM_ADMIN_TOKEN": "a1",
        "PROFILE_STREAM_CA_FILE": str(ca),
        "PROFILE_STREAM_TIMEOUT_S": "2.5",
        "PROFILE_STREAM_INPUT_TOPIC": "in",
        "PROFILE_STREAM_OUTPUT_TOPIC": "out",
        "PROFILE_STREAM_KAFKA_BOOTSTRAP": "b-1:9096",
        "PROFILE_STREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "PROFILE_STREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "PROFILE_STREAM_KAFKA_SASL_USERNAME": "app",
        "PROFILE_STREAM_KAFKA_SASL_PASSWORD": "secret",
    }
    for name, value in env.items():
        clean_env.setenv(name, value)

    config = ClientConfig.from_env()

    assert (config.url, config.token, config.admin_token) == (
        "https://profiles.internal:8443",
        "r1",
        "a1",
    )
    assert (config.ca_file, config.timeout_s) == (ca, 2.5)
    assert (config.input_topic, config.events_topic) == ("in", "out")
    assert config.kafka.bootstrap == "b-1:9096" and config.kafka.sasl_username == "app"
    assert "secret" not in repr(config)


def test_tokens_and_url_fall_back_to_the_workers_own_variables(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("PROFILE_STREAM_READ_TOKENS", " demo-read , other")
    clean_env.setenv("PROFILE_STREAM_ADMIN_TOKENS", "demo-admin")
    clean_env.setenv("PROFILE_STREAM_WEB_PORT", "6070")
    config = ClientConfig.from_env()
    assert (config.url, config.token, config.admin_token) == (
        "http://127.0.0.1:6070",
        "demo-read",
        "demo-admin",
    )


def test_arguments_win_over_the_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PROFILE_STREAM_URL", "http://elsewhere:1")
    clean_env.setenv("PROFILE_STREAM_TOKEN", "from-env")
    client = AsyncProfileStreamClient(url="http://here:6066", kafka=KafkaConnection("k:9092"))
    assert (client.config.url, client.config.token) == ("http://here:6066", "from-env")
    assert client.config.kafka.bootstrap == "k:9092"
    fixed = AsyncProfileStreamClient(ClientConfig(url="http://only:1"))  # no variables read
    assert fixed.config.token == ""


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("PROFILE_STREAM_URL", "localhost:6066", "PROFILE_STREAM_URL .*not an http"),
        ("PROFILE_STREAM_CA_FILE", "/nowhere/ca.pem", "PROFILE_STREAM_CA_FILE: .*does not exist"),
        ("PROFILE_STREAM_TIMEOUT_S", "soon", "PROFILE_STREAM_TIMEOUT_S='soon' is not a number"),
        ("PROFILE_STREAM_TIMEOUT_S", "0", "PROFILE_STREAM_TIMEOUT_S: timeout_s must be above"),
        ("PROFILE_STREAM_KAFKA_SECURITY_PROTOCOL", "TLS", "PROFILE_STREAM_KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_a_malformed_variable_is_named(
    clean_env: pytest.MonkeyPatch, variable: str, value: str, words: str
) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(ConfigError, match=words):
        ClientConfig.from_env()


def test_a_malformed_argument_is_named_as_the_argument(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="^worker URL 'nope' is not an http"):
        AsyncProfileStreamClient(url="nope")
