"""The client as an app installs it: ``profile-stream-client`` built from clients/python, put
into a fresh virtualenv with nothing else, then used there against a real worker.

Three times: with the newest releases its version ranges allow (what ``pip install`` picks
today); with the lowest (each dependency at its lower bound), so both ends of the ranges are run;
and with the ``langgraph`` extra, whose store the app then reads the profile through as well.
Each time, the examples of the client's README (its PyPI page) run as written against a worker
started as it says: the default flush settings, no model (the rules extractor).
"""

import asyncio
import json
import re
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.version import Version

from tests.fakes.llm_server import FakeLLM
from tests.support import clean_environ

from .conftest import StartWorker
from .harness import BOOTSTRAP, READ_TOKEN, Names

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"
APP = Path(__file__).with_name("client_app.py")
#: What the worker needs and an app must not get from the client (distribution names).
WORKER_ONLY = {
    "faust-streaming",
    "mode-streaming",
    "rocksdict",
    "redis",
    "openai",
    "click",
    "prometheus-client",
    "pydantic-settings",
    "profile-stream",
}
#: Import names that must not resolve in the client's virtualenv.
NOT_IMPORTABLE = ["faust", "mode", "rocksdict", "redis", "openai", "click", "streams", "schemas"]


@dataclass(frozen=True)
class Venv:
    resolution: str
    python: Path
    packages: dict[str, str]  # distribution name (lower case) to version
    seconds: float  # creating it and installing the client


def _env() -> dict[str, str]:
    """No PYTHONPATH (the repository), no profile-stream settings."""
    return {k: v for k, v in clean_environ().items() if k not in {"PYTHONPATH", "PYTHONHOME"}}


async def _run(
    *argv: str | Path, cwd: Path, timeout: float = 180.0, env: dict[str, str] | None = None
) -> str:
    """Run a command without blocking the loop (the fake model serves on it); its stdout."""
    proc = await asyncio.create_subprocess_exec(
        *map(str, argv),
        cwd=cwd,
        env=_env() | (env or {}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{argv[:4]} did not finish within {timeout}s") from None
    if proc.returncode != 0:
        raise AssertionError(
            f"{argv[:4]} exited with {proc.returncode}:\n{out.decode()}{err.decode()}"
        )
    return out.decode()


def _lower_bounds() -> dict[str, str]:
    """Each of the client's dependencies at the lower bound of its range."""
    deps = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = dict(re.findall(r"^([A-Za-z0-9_.-]+)>=([^,]+),", "\n".join(deps), re.M))
    assert len(bounds) == len(deps), f"every dependency needs a >= lower bound: {deps}"
    return bounds


@pytest.fixture(scope="module")
async def client_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("client-wheel")
    await _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, CLIENT, cwd=out)
    (wheel,) = out.glob("profile_stream_client-*.whl")
    return wheel


@pytest.fixture(scope="module", params=["newest", "lowest", "langgraph"])
async def venv(
    request: pytest.FixtureRequest, client_wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Venv:
    """A fresh virtualenv with the client installed, and nothing else asked for.

    pip is this interpreter's, pointed at the new environment (``--python``): the same resolver
    an app's pip runs, without bootstrapping a pip into every virtualenv. It uses pip's cache.
    """
    here = tmp_path_factory.mktemp(f"venv-{request.param}")
    started = time.monotonic()
    await _run(sys.executable, "-m", "venv", "--without-pip", here / "venv", cwd=here)
    python = here / "venv" / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python]
    constraints: list[str | Path] = []
    if request.param == "lowest":
        pins = "".join(f"{name}=={low}\n" for name, low in _lower_bounds().items())
        (here / "lowest.txt").write_text(pins)
        constraints = ["-c", here / "lowest.txt"]
    wanted = f"{client_wheel}[langgraph]" if request.param == "langgraph" else client_wheel
    await _run(*pip, "install", "-q", *constraints, wanted, cwd=here)
    seconds = time.monotonic() - started
    listed = json.loads(await _run(*pip, "list", "--format=json", cwd=here))
    packages = {p["name"].lower().replace("_", "-"): p["version"] for p in listed}
    print(
        f"\n[{request.param}] client virtualenv in {seconds:.1f}s: "
        + ", ".join(f"{name}=={version}" for name, version in sorted(packages.items()))
    )
    return Venv(request.param, python, packages, seconds)


async def test_the_client_installs_alone_under_one_top_level_package(venv: Venv) -> None:
    assert "profile-stream-client" in venv.packages
    assert {"pydantic", "orjson", "aiokafka", "aiohttp"} <= set(venv.packages)
    assert WORKER_ONLY.isdisjoint(venv.packages), WORKER_ONLY & set(venv.packages)
    assert ("langgraph" in venv.packages) == (venv.resolution == "langgraph")
    if venv.resolution == "lowest":
        for name, low in _lower_bounds().items():
            assert Version(venv.packages[name]) == Version(low), f"{name} {venv.packages[name]}"

    probe = (
        "import importlib.metadata as md, importlib.util as u, json, sys;"
        f"absent = [n for n in {NOT_IMPORTABLE!r} if u.find_spec(n) is None];"
        "dist = md.distribution('profile-stream-client');"
        "tops = {f.parts[0] for f in dist.files};"
        "lic = [f.read_text()[:200] for f in dist.files if f.name == 'LICENSE'];"
        "print(json.dumps({'absent': absent, 'tops': sorted(tops), 'license': lic,"
        " 'expression': dist.metadata['License-Expression']}))"
    )
    seen = json.loads(await _run(venv.python, "-I", "-c", probe, cwd=venv.python.parent))
    assert seen["absent"] == NOT_IMPORTABLE
    [license_text] = seen["license"]
    assert "Apache License" in license_text and "Version 2.0" in license_text
    assert seen["expression"] == "Apache-2.0"
    assert [t for t in seen["tops"] if not t.endswith(".dist-info")] == ["profile_stream"]


async def test_an_app_with_only_the_client_publishes_follows_and_reads_a_profile(
    venv: Venv, start_worker: StartWorker, names: Names, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.on("I'm Alice", {"field": "name", "op": "set", "value": "Alice"})
    worker = await start_worker()
    user = "alice/öz?1"  # quoted in the URL by the installed client too
    args = [names.input, names.output, worker.url, READ_TOKEN, user, "I'm Alice"]
    if venv.resolution == "langgraph":
        args.append("--langgraph")

    out = await _run(venv.python, "-I", APP, BOOTSTRAP, *args, cwd=tmp_path, timeout=120)

    seen = json.loads(out.splitlines()[-1])
    assert seen["sent"] == 1
    event, profile = seen["event"], seen["profile"]
    assert (event["user_id"], event["type"], event["profile"]["name"]) == (user, "updated", "Alice")
    assert event["source_message_ids"] == [seen["message_id"]]
    assert (profile["user_id"], profile["profile"]["name"]) == (user, "Alice")
    assert profile["version"] == event["version"]
    assert {"profile_stream", "aiokafka", "aiohttp"} <= set(seen["modules"])
    assert {"streams", "schemas", "faust", "rocksdict"}.isdisjoint(seen["modules"])
    if venv.resolution == "langgraph":
        assert seen["store"]["namespace"] == ["users", user, "profile"]
        assert seen["store"]["value"]["name"] == "Alice"
    else:
        assert seen["store"] is None


#: The README's examples, in order: the sync one, then the async one.
README_EXAMPLES = re.findall(r"```python\n(.*?)```", (CLIENT / "README.md").read_text(), re.S)[:2]


@pytest.mark.parametrize(
    ("example", "shows"),
    [(0, ["Alice California ", "<User Profile>"]), (1, ["Bob London ", "buffered_messages=0"])],
    ids=["sync", "async"],
)
async def test_the_readme_examples_run_as_written_against_a_worker_with_the_defaults(
    venv: Venv,
    start_worker: StartWorker,
    names: Names,
    tmp_path: Path,
    example: int,
    shows: list[str],
) -> None:
    """The worker as the README's quickstart starts it: its default flush settings (a minute of
    quiet before extraction) and no model; the example reads through read-your-writes (a
    refresh, or wait_for after an end of conversation), never by waiting out the minute."""
    worker = await start_worker(PROFILE_STREAM_EXTRACTOR="rules", PROFILE_STREAM_FLUSH_IDLE_S="60")
    app = tmp_path / "example.py"
    app.write_text(README_EXAMPLES[example])
    env = {  # what the README's shell has; the topics are this test's own
        "PROFILE_STREAM_URL": worker.url,
        "PROFILE_STREAM_READ_TOKENS": READ_TOKEN,
        "PROFILE_STREAM_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "PROFILE_STREAM_INPUT_TOPIC": names.input,
        "PROFILE_STREAM_OUTPUT_TOPIC": names.output,
    }
    started = time.monotonic()

    out = await _run(venv.python, "-I", app, cwd=tmp_path, env=env, timeout=60)

    assert all(words in out for words in shows), out
    assert time.monotonic() - started < 30, "read-your-writes, not the idle flush's minute"
