"""`python -m deploy.llm_server`'s command line, and the real model's packages kept out of what
the worker and the client install (they are third-party repacks, served from a venv of their own).
Serving itself is what `make real-model` checks (README, "Against a real model")."""

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from deploy.llm_model import MODELS
from deploy.llm_server import CTX_SIZE, THREADS, XLLAMACPP, parse_args

ROOT = Path(__file__).resolve().parents[3]


def test_serve_takes_the_model_the_port_and_the_servers_sizes() -> None:
    args = parse_args(["serve", "--model", "0.5b", "--port", "8088", "--ctx-size", "4096"])
    assert (args.command, args.model, args.port, args.ctx_size) == ("serve", "0.5b", 8088, 4096)
    assert args.threads == THREADS == 2


def test_without_options_the_model_is_left_to_real_model_and_the_port_free() -> None:
    args = parse_args(["serve"])
    assert (args.model, args.port, args.ctx_size) == (None, None, CTX_SIZE)
    assert parse_args(["fetch"]).model is None


@pytest.mark.parametrize("argv", [["serve", "--model", "7b"], [], ["fetch", "--port", "1"]])
def test_a_bad_command_line_is_refused_with_the_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    assert "usage: python -m deploy.llm_server" in capsys.readouterr().err


def _requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {}).values()
    return [
        Requirement(r).name for r in [*project["dependencies"], *(r for e in extras for r in e)]
    ]


@pytest.mark.parametrize("pyproject", ["pyproject.toml", "clients/python/pyproject.toml"])
def test_the_model_and_its_server_are_no_dependency_of_the_worker_or_the_client(
    pyproject: str,
) -> None:
    ours = {XLLAMACPP[0], *(p.package for p in MODELS.values())}
    named = _requirements(ROOT / pyproject)
    assert named  # the file was read
    assert not [n for n in named if n.startswith(tuple(ours))]
