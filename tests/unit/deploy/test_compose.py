"""docker-compose.yml: the mistakes a user would only meet at `docker compose up`."""

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import certifi
import pytest
import yaml

from streams.cli import main as cli
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
WORKERS = ["worker-1", "worker-2"]
PREFIX = Settings.model_config["env_prefix"]
SETTINGS_ENV = {PREFIX + name.upper() for name in Settings.model_fields}
SETTINGS_ENV |= {"OPENAI_API_KEY", "OPENAI_BASE_URL"}


def _default(name: str) -> Any:
    return Settings.model_fields[name].default


def _resolve(value: object) -> str:
    """``${VAR:-default}`` as compose sees it with VAR unset."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", str(value))


def _env(service: str) -> dict[str, Any]:
    env = SERVICES[service].get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: None if v is None else _resolve(v) for k, v in env.items()}


def _ports(service: str) -> list[tuple[int, int]]:
    """(host, container) pairs."""
    pairs = []
    for port in SERVICES[service].get("ports", []):
        if isinstance(port, dict):
            pairs.append((int(port["published"]), int(port["target"])))
        else:
            *_, host, container = _resolve(port).split("/")[0].split(":")
            pairs.append((int(host), int(container)))
    return pairs


def _mounts(service: str) -> dict[str, str]:
    """target -> source."""
    mounts = {}
    for vol in SERVICES[service].get("volumes", []):
        if isinstance(vol, dict):
            mounts[vol["target"]] = vol.get("source", "")
        else:
            source, target, *_ = vol.split(":")
            mounts[target] = source
    return mounts


def test_core_services_start_without_a_profile() -> None:
    assert "version" not in COMPOSE
    for name in ["kafka", "redis", *WORKERS]:
        assert name in SERVICES
        assert not SERVICES[name].get("profiles"), f"{name} would not start on `up`"


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_env_names_are_settings(worker: str) -> None:
    env = _env(worker)
    assert set(env) - SETTINGS_ENV == set(), "misspelt or unknown settings are silently ignored"
    assert env.get(PREFIX + "READ_TOKENS"), "with no token every read is refused"
    Settings(**{k.removeprefix(PREFIX).lower(): v for k, v in env.items() if v})


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_is_reachable_under_its_own_name(worker: str) -> None:
    env = _env(worker)
    port = int(env.get(PREFIX + "WEB_PORT") or _default("web_port"))
    assert [container for _, container in _ports(worker)] == [port]
    assert env[PREFIX + "WEB_HOST"] == worker
    assert env[PREFIX + "WEB_BIND"] == "0.0.0.0"


def test_host_ports_are_distinct() -> None:
    host_ports = [host for name in SERVICES for host, _ in _ports(name)]
    assert len(host_ports) == len(set(host_ports)), host_ports


def test_each_worker_has_its_own_data_volume() -> None:
    sources = []
    for worker in WORKERS:
        data_dir = _env(worker).get(PREFIX + "DATA_DIR") or str(_default("data_dir"))
        source = _mounts(worker).get(data_dir)
        assert source, f"{worker}: nothing mounted at its data dir {data_dir}"
        sources.append(source)
    assert len(set(sources)) == len(WORKERS), "workers sharing a data dir lock each other out"


def test_named_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for name in SERVICES:
        for source in _mounts(name).values():
            if source and not source.startswith(("/", ".", "~")):
                assert source in declared, f"{name}: volume {source} not declared"


def test_bootstrap_names_a_kafka_listener() -> None:
    kafka = _env("kafka")
    listen_ports = {int(url.rsplit(":", 1)[1]) for url in kafka["KAFKA_LISTENERS"].split(",")}
    advertised = {url.split("://")[1] for url in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    partitions = kafka.get("KAFKA_NUM_PARTITIONS")
    for worker in WORKERS:
        for server in _env(worker)[PREFIX + "KAFKA_BOOTSTRAP"].split(","):
            host, _, port = server.rpartition(":")
            assert host == "kafka"
            assert int(port) in listen_ports
            assert server in advertised, "clients reconnect to the advertised address"
        if partitions is not None:
            expected = _env(worker).get(PREFIX + "PARTITIONS") or _default("partitions")
            assert int(partitions) == int(expected)


def test_redis_url_names_the_redis_service() -> None:
    for worker in WORKERS:
        url = urlsplit(_env(worker)[PREFIX + "REDIS_URL"])
        assert (url.scheme, url.hostname, url.port or 6379) == ("redis", "redis", 6379)


def test_workers_wait_for_healthy_dependencies() -> None:
    for worker in WORKERS:
        build = SERVICES[worker]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()
        for dep in ["kafka", "redis"]:
            assert SERVICES[worker]["depends_on"][dep]["condition"] == "service_healthy"
            assert SERVICES[dep]["healthcheck"]["test"]


def test_demo_is_behind_a_profile() -> None:
    demo = SERVICES["demo"]
    assert demo["profiles"]
    assert demo["command"][0] in cli.commands
    assert demo.get("image") == SERVICES["worker-1"].get("image") or "build" in demo


def test_the_demos_read_is_a_refresh_a_worker_answers_with_its_read_token() -> None:
    """The compose demo (no Docker engine here to run it): its read command, in the file's
    header, refreshes with the read token the workers get, under their default flush settings,
    so it shows the message the demo just sent instead of waiting 60 s of quiet."""
    from streams.web.views import TABLE

    text = (ROOT / "docker-compose.yml").read_text()
    found = re.search(r"curl -X POST -H \"Authorization: Bearer (\S+)\" (\S+)", text)
    assert found is not None, "the header shows no refresh"
    token, url = found.groups()
    for worker in WORKERS:
        env = _env(worker)
        assert token in env[PREFIX + "READ_TOKENS"].split(",")
        assert PREFIX + "FLUSH_IDLE_S" not in env  # the defaults, as a user's
    path = urlsplit(url).path
    assert path == "/profiles/alice/refresh" and urlsplit(url).port == _ports("worker-1")[0][0]
    (route,) = [r for r in TABLE if r.path == "/profiles/{user_id}/refresh"]
    assert route.scopes == {"POST": "read"}
    assert _demo_user() == "alice"


def _demo_user() -> str:
    command = SERVICES["demo"]["command"]
    return str(command[command.index("--user") + 1])


#: The settings that hold a secret (or name who holds one).
SECRET_SETTINGS = {
    PREFIX + name.upper()
    for name, field in Settings.model_fields.items()
    if "SecretStr" in str(field.annotation)
} | {"OPENAI_API_KEY", PREFIX + "KAFKA_SASL_USERNAME"}
TEXT = (ROOT / "docker-compose.yml").read_text()


def _commented_settings() -> dict[str, str]:
    """``# NAME: value`` lines: the settings for a secured cluster, shown commented out."""
    found = re.findall(r"^\s*#\s*((?:PROFILE_STREAM|OPENAI)_\w+):\s*(.*?)\s*$", TEXT, re.M)
    return dict(found)


def test_the_secured_cluster_settings_are_shown_with_secrets_from_the_environment() -> None:
    shown = _commented_settings()
    security = {"SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD"}
    assert {PREFIX + "KAFKA_" + name for name in security | {"SSL_CAFILE"}} <= set(shown)
    assert set(shown) <= SETTINGS_ENV
    for name in SECRET_SETTINGS & set(shown):
        # Interpolated from the shell or .env, with no default: never a value in this file.
        assert re.fullmatch(r"\$\{" + name + r":\?[^}]+\}", shown[name]), (name, shown[name])


def test_the_kafka_ca_is_a_compose_secret_every_kafka_client_mounts() -> None:
    cafile = _commented_settings()[PREFIX + "KAFKA_SSL_CAFILE"]
    name = cafile.removeprefix("/run/secrets/")
    assert re.search(rf"^#\s+secrets:\n#\s+{name}:\n#\s+file: \S+$", TEXT, re.M)
    for service in [*WORKERS, "demo"]:
        block = re.search(rf"^  {service}:\n(.*?)(?=^  \S|^\S)", TEXT, re.M | re.S)
        assert block and f"# secrets: [{name}]" in block.group(1), service


def test_uncommented_the_secured_settings_are_valid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shown = _commented_settings()
    given = {
        PREFIX + "KAFKA_SASL_USERNAME": "profile_stream",
        PREFIX + "KAFKA_SASL_PASSWORD": "from-the-env-file",
        PREFIX + "REDIS_URL": "rediss://:pw@redis.example:6380/0",
    }
    env = {k: v for k, v in _env("worker-1").items() if v} | shown | given
    ca = tmp_path / "kafka-ca"  # the mounted secret: a real PEM bundle
    ca.write_text(Path(certifi.where()).read_text())
    env[PREFIX + "KAFKA_SSL_CAFILE"] = str(ca)
    for name in list(os.environ):
        if name.startswith((PREFIX, "OPENAI_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.kafka.security_protocol, settings.kafka.sasl_mechanism) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert settings.kafka.ssl_context is not None and settings.kafka_sasl_username
