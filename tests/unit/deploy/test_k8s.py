"""deploy/k8s: the mistakes a user would only meet on a cluster, checked against the code."""

import os
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import certifi
import pytest
import yaml

from streams.cli import main as cli
from streams.settings import Settings
from streams.web.views import TABLE

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
PREFIX = Settings.model_config["env_prefix"]
SETTINGS_ENV = {PREFIX + name.upper() for name in Settings.model_fields}
SETTINGS_ENV |= {"OPENAI_API_KEY", "OPENAI_BASE_URL"}
HELPERS = {"POD_NAME", "NAMESPACE"}  # downward API, only to build PROFILE_STREAM_WEB_HOST
#: The settings that hold a secret (or name who holds one): never a literal in a manifest.
SECRET_SETTINGS = {
    PREFIX + name.upper()
    for name, field in Settings.model_fields.items()
    if "SecretStr" in str(field.annotation)
} | {"OPENAI_API_KEY", PREFIX + "KAFKA_SASL_USERNAME"}
#: ``# NAME: "value"``: a setting a manifest shows commented out, to uncomment when needed.
COMMENTED = re.compile(r'^\s*#\s*((?:PROFILE_STREAM|OPENAI)_\w+):\s*"?([^"\n]*)"?\s*$', re.M)
# The paths the worker serves, from its route table (the views' dependencies are not needed).
ROUTES = {route.path for route in TABLE}
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


KUSTOMIZATION: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
OBJECTS = {(doc["kind"], doc["metadata"]["name"]): doc for p in MANIFESTS for doc in _load(p)}


def _one(kind: str) -> dict[str, Any]:
    (found,) = [doc for (k, _), doc in OBJECTS.items() if k == kind]
    return found


STS = _one("StatefulSet")
POD = STS["spec"]["template"]
(WORKER,) = POD["spec"]["containers"]
CONFIG = _one("ConfigMap")
SECRETS = {name: doc for (kind, name), doc in OBJECTS.items() if kind == "Secret"}
SECRET = SECRETS["profile-stream"]  # the one the pods read whole (envFrom)
SERVICES = {name: doc for (kind, name), doc in OBJECTS.items() if kind == "Service"}
HEADLESS = SERVICES["profile-stream-headless"]
PORTS = {p["name"]: p["containerPort"] for p in WORKER["ports"]}


def _selects_pods(selector: dict[str, str]) -> bool:
    labels = POD["metadata"]["labels"]
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _port(ref: int | str) -> int:
    return PORTS[ref] if isinstance(ref, str) else ref


def test_every_manifest_parses_and_is_a_kubernetes_object() -> None:
    assert MANIFESTS
    for path in MANIFESTS:
        docs = _load(path)
        assert docs, f"{path.name} is empty"
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path.name
    kinds = {kind for kind, _ in OBJECTS}
    assert {"StatefulSet", "Service", "PodDisruptionBudget", "ConfigMap", "Secret"} <= kinds


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    listed = set(KUSTOMIZATION["resources"])
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization lists a missing file {name}"
    examples = {p.name for p in MANIFESTS if any(d["kind"] == "Secret" for d in _load(p))}
    assert examples and not examples & listed, "applying the example would overwrite real keys"
    assert {p.name for p in MANIFESTS} - examples == listed


def test_env_names_are_settings() -> None:
    names = [e["name"] for e in WORKER["env"]]
    assert set(names) - SETTINGS_ENV - HELPERS == set(), "unknown settings are silently ignored"
    assert set(CONFIG["data"]) - SETTINGS_ENV == set(), "unknown settings are silently ignored"
    assert set(SECRET["stringData"]) - SETTINGS_ENV == set()
    for source in WORKER["envFrom"]:
        ref = source.get("configMapRef") or source.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        assert (kind, ref["name"]) in OBJECTS, f"envFrom names a missing {kind} {ref['name']}"


def test_config_map_values_are_strings() -> None:
    for key, value in CONFIG["data"].items():
        assert isinstance(value, str), f"{key}: a ConfigMap value must be a string (quote it)"


def test_secrets_are_in_the_secret_and_placeholders_say_so() -> None:
    secret_keys = {
        "OPENAI_API_KEY",
        PREFIX + "READ_TOKENS",
        PREFIX + "ADMIN_TOKENS",
        PREFIX + "COMMAND_KEYS",
    }
    assert secret_keys <= set(SECRET["stringData"])
    assert not secret_keys & set(CONFIG["data"]), "keys and tokens belong in the Secret"
    assert not secret_keys & {e["name"] for e in WORKER["env"]}
    for secret in SECRETS.values():
        for value in secret["stringData"].values():
            assert "REPLACE-ME" in value


def _commented(path: Path) -> dict[str, str]:
    return dict(COMMENTED.findall(path.read_text()))


def _secret_refs() -> dict[str, dict[str, Any]]:
    """Env name: its secretKeyRef."""
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in WORKER["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def test_every_secret_setting_comes_from_a_secret_never_a_literal() -> None:
    refs = _secret_refs()
    connection = {PREFIX + n for n in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "REDIS_URL")}
    assert connection <= set(refs)
    for name in SECRET_SETTINGS:
        for path in MANIFESTS:
            assert name not in _commented(path), f"{path.name}: {name} as a literal, commented"
        for item in WORKER["env"]:
            assert item["name"] != name or name in refs, f"{name}: a literal value in the pod"
    # A literal only as the fallback of a Secret's, and holding no secret: a password-less URL.
    for name in SECRET_SETTINGS & set(CONFIG["data"]):
        url = urlsplit(CONFIG["data"][name])
        assert name in refs and url.username is None and url.password is None, name


def test_each_secret_key_ref_is_optional_and_the_example_has_its_key() -> None:
    for name, ref in _secret_refs().items():
        assert ref["optional"] is True, f"{name}: without the Secret the pod would not start"
        assert ref["key"] in SECRETS[ref["name"]]["stringData"], f"{name}: {ref}"
        assert ref["name"] != SECRET["metadata"]["name"], "read whole already (envFrom)"


def _kafka_ca() -> tuple[PurePosixPath, str, str]:
    """The CA file's path in the pod, the Secret and the key it comes from."""
    (mount,) = [m for m in WORKER["volumeMounts"] if m["name"] == "kafka-ca"]
    (volume,) = [v for v in POD["spec"]["volumes"] if v["name"] == mount["name"]]
    assert mount["readOnly"] is True and volume["secret"]["optional"] is True
    ((item),) = volume["secret"]["items"]  # the CA only: the password stays out of files
    return (
        PurePosixPath(mount["mountPath"], item["path"]),
        volume["secret"]["secretName"],
        item["key"],
    )


def test_the_kafka_ca_file_setting_names_the_mounted_secret_key() -> None:
    path, secret, key = _kafka_ca()
    assert _commented(K8S / "configmap.yaml")[PREFIX + "KAFKA_SSL_CAFILE"] == str(path)
    assert key in SECRETS[secret]["stringData"]


def test_dependent_env_vars_come_after_what_they_use() -> None:
    defined: set[str] = set()
    for item in WORKER["env"]:
        for ref in re.findall(r"\$\((\w+)\)", str(item.get("value", ""))):
            assert ref in defined, f"{item['name']} uses $({ref}) before it is defined"
        defined.add(item["name"])
    fields = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in WORKER["env"][:2]}
    assert fields == {"POD_NAME": "metadata.name", "NAMESPACE": "metadata.namespace"}


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], value)


def _pod_env(config: dict[str, str], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """Pod 0's environment: ``config`` and the Secret (envFrom), then the container's env, its
    secretKeyRefs read from ``secrets`` (name: data), the Secrets that exist."""
    env = {**config, **SECRET["stringData"]}
    downward = {"POD_NAME": f"{STS['metadata']['name']}-0", "NAMESPACE": "ns"}
    for item in WORKER["env"]:
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            env[item["name"]] = downward.get(item["name"]) or _expand(item["value"], downward | env)
        elif ref["key"] in secrets.get(ref["name"], {}):
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name in list(os.environ):
        if name.startswith(PREFIX) or name.startswith("OPENAI_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.fixture
def pod_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a worker pod reads with the manifests as they are: ConfigMap, the Secret
    example, then the pod's own env; no Kafka or Redis Secret."""
    return _settings(monkeypatch, _pod_env(CONFIG["data"], {}))


def test_without_the_kafka_and_redis_secrets_a_pod_connects_as_the_config_map_says(
    pod_settings: Settings,
) -> None:
    assert pod_settings.kafka.security_protocol == "PLAINTEXT"
    assert pod_settings.kafka_sasl_username is None and pod_settings.kafka_sasl_password is None
    assert pod_settings.redis_url.get_secret_value() == CONFIG["data"][PREFIX + "REDIS_URL"]


def test_with_the_secrets_and_the_commented_settings_a_pod_uses_sasl_ssl(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = CONFIG["data"] | _commented(K8S / "configmap.yaml")
    path, secret, key = _kafka_ca()
    # The Secret's file, mounted: a real PEM bundle in place of the example's placeholder.
    (tmp_path / path.name).write_text(Path(certifi.where()).read_text())
    config[PREFIX + "KAFKA_SSL_CAFILE"] = str(tmp_path / path.name)
    data = {name: doc["stringData"] for name, doc in SECRETS.items()}
    settings = _settings(monkeypatch, _pod_env(config, data))
    assert settings.kafka.security_protocol == "SASL_SSL" and settings.kafka.ssl_context
    assert settings.kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_sasl_username == data[secret]["sasl-username"] and key in data[secret]
    password = settings.kafka_sasl_password
    assert password is not None and password.get_secret_value() == data[secret]["sasl-password"]
    assert settings.redis_url.get_secret_value() == data["profile-stream-redis"]["url"]


def test_pod_settings_are_valid_and_reachable(pod_settings: Settings) -> None:
    headless = HEADLESS["metadata"]["name"]
    pod = f"{STS['metadata']['name']}-0"
    assert pod_settings.web_host == f"{pod}.{headless}.ns.svc.cluster.local"
    assert pod_settings.web_bind == "0.0.0.0", "peers and probes could not reach the worker"
    assert pod_settings.extractor_kind == "openai"
    assert pod_settings.read_tokens, "with no token every read is refused"


def test_each_pod_is_a_static_member_under_its_own_stable_name(pod_settings: Settings) -> None:
    # The pod name: unique in the StatefulSet, the same after a restart, like the web host that
    # Faust checks an assignment against.
    assert pod_settings.group_instance_id == f"{STS['metadata']['name']}-0"
    assert pod_settings.web_host.startswith(f"{pod_settings.group_instance_id}.")


def test_container_port_is_the_web_port(pod_settings: Settings) -> None:
    default = Settings.model_fields["web_port"].default
    assert PORTS == {"http": default}
    assert pod_settings.web_port == default
    annotations = POD["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == default
    assert annotations["prometheus.io/path"] in ROUTES


def test_probes_hit_real_routes() -> None:
    assert {"/healthz", "/readyz", "/metrics"} <= ROUTES, ROUTES
    ready, live = WORKER["readinessProbe"]["httpGet"], WORKER["livenessProbe"]["httpGet"]
    assert ready["path"] == "/readyz"
    assert live["path"] == "/healthz"
    for probe in (ready, live):
        assert _port(probe["port"]) in PORTS.values()


def test_data_dir_is_the_claimed_volume(pod_settings: Settings) -> None:
    (claim,) = STS["spec"]["volumeClaimTemplates"]
    mounts = {m["mountPath"]: m["name"] for m in WORKER["volumeMounts"]}
    assert mounts.get(str(pod_settings.data_dir)) == claim["metadata"]["name"]
    assert str(pod_settings.data_dir) == "/data"
    assert "PROFILE_STREAM_DATA_DIR=/data" in DOCKERFILE, "the image and the pod disagree"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"]
    others = {v["name"] for v in POD["spec"].get("volumes", [])}
    assert claim["metadata"]["name"] not in others, "a pod volume would shadow the claim"


def test_runs_as_the_image_user_not_root() -> None:
    pod_ctx = POD["spec"]["securityContext"]
    uid = int(re.findall(r"^USER (\d+)", DOCKERFILE, re.M)[-1])
    assert pod_ctx["runAsNonRoot"] is True
    assert pod_ctx["runAsUser"] == uid != 0
    assert pod_ctx["fsGroup"], "the volume would not be writable by the worker"
    assert WORKER["securityContext"]["allowPrivilegeEscalation"] is False


def test_image_and_command() -> None:
    assert WORKER["image"].split(":")[0] == "profile-stream"
    assert WORKER["args"][0] in cli.commands
    assert WORKER["args"][0] == "worker"


def test_headless_service_names_the_pods() -> None:
    spec = HEADLESS["spec"]
    assert STS["spec"]["serviceName"] == HEADLESS["metadata"]["name"]
    assert spec["clusterIP"] == "None"
    assert spec["publishNotReadyAddresses"] is True, "peers could not forward during rebalances"
    assert _selects_pods(spec["selector"])
    assert _selects_pods(STS["spec"]["selector"]["matchLabels"])


def test_client_service_reaches_the_web_port() -> None:
    clients = [s for name, s in SERVICES.items() if s["spec"].get("clusterIP") != "None"]
    assert clients
    for service in clients:
        assert _selects_pods(service["spec"]["selector"])
        for port in service["spec"]["ports"]:
            assert _port(port["targetPort"]) in PORTS.values()


def test_service_links_do_not_leak_into_the_settings_prefix() -> None:
    # A Service named profile-stream would put PROFILE_STREAM_SERVICE_HOST, PROFILE_STREAM_PORT
    # and the like into every pod's environment.
    assert any(name.upper().replace("-", "_") + "_" == PREFIX for name in SERVICES)
    assert POD["spec"]["enableServiceLinks"] is False


def test_disruption_budget_and_shutdown() -> None:
    pdb = _one("PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert _selects_pods(pdb["selector"]["matchLabels"])
    assert STS["spec"]["replicas"] == 2
    assert POD["spec"]["terminationGracePeriodSeconds"] > 30, "Kubernetes' default is 30 s"


def test_resources_are_set() -> None:
    resources = WORKER["resources"]
    assert resources["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert resources["limits"]["memory"] == "1Gi"
