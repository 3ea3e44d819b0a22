"""deploy/Dockerfile: the runtime stage a worker container actually runs."""

import json
import shlex
import tomllib
from pathlib import Path

from streams.cli import main as cli
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
TEXT = (ROOT / "deploy" / "Dockerfile").read_text()


def _instructions() -> list[tuple[str, str]]:
    lines = [line for line in TEXT.splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    return [
        (word.upper(), args.strip())
        for word, _, args in (line.strip().partition(" ") for line in joined.splitlines())
        if word
    ]


ALL = _instructions()
LAST_FROM = max(i for i, (word, _) in enumerate(ALL) if word == "FROM")
FINAL = ALL[LAST_FROM:]


def _args(word: str) -> list[str]:
    return [args for w, args in FINAL if w == word]


def _words(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def test_copied_sources_exist() -> None:
    for word, args in ALL:
        if word == "COPY" and "--from" not in args:
            for source in [w for w in _words(args)[:-1] if not w.startswith("--")]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the build context"


def test_runs_as_non_root() -> None:
    users = _args("USER")
    assert users, "no USER: the worker would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_exposes_the_default_web_port() -> None:
    exposed = {int(p.split("/")[0]) for args in _args("EXPOSE") for p in args.split()}
    assert Settings.model_fields["web_port"].default in exposed


def test_entrypoint_is_the_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    (entrypoint,) = _args("ENTRYPOINT")
    assert json.loads(entrypoint) == ["profile-stream"]
    assert "profile-stream" in scripts
    (cmd,) = _args("CMD")
    assert json.loads(cmd)[0] in cli.commands


def test_data_dir_is_a_volume() -> None:
    env = dict(item.partition("=")[::2] for args in _args("ENV") for item in shlex.split(args))
    volumes = {v for args in _args("VOLUME") for v in _words(args)}
    assert env.get("PROFILE_STREAM_DATA_DIR") in volumes
    assert env.get("PROFILE_STREAM_WEB_BIND") == "0.0.0.0", "peers could not reach the worker"


def test_healthcheck_hits_healthz() -> None:
    (check,) = _args("HEALTHCHECK")
    assert " CMD " in f" {check} " and "/healthz" in check
    assert '"/healthz"' in (ROOT / "streams" / "web" / "views.py").read_text()
