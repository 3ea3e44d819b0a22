"""`python -m deploy.llm_server`'s command line; serving through deploy/xllamacpp_serve.py, with
a stub of ``xllamacpp`` (tests/fakes/xllamacpp_stub: no model); and the real model's packages
kept out of what the worker and the client install (third-party repacks, served from a venv of
their own). The real server and model are what `make real-model` checks (README)."""

import json
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from deploy import llm_server
from deploy.llm_model import MODELS
from deploy.llm_server import (
    CTX_SIZE,
    THREADS,
    XLLAMACPP,
    parse_args,
    serve_model,
    server_python,
    start_server,
)

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


STUB = ROOT / "tests" / "fakes" / "xllamacpp_stub"


@pytest.fixture
def stubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """deploy/xllamacpp_serve.py run by this interpreter on an empty model file, its log in
    ``tmp_path``; ``xllamacpp`` is the stub only when the test puts it on PYTHONPATH."""
    gguf = tmp_path / "model.gguf"
    gguf.touch()
    monkeypatch.setattr(llm_server, "model_file", lambda spec: gguf)
    monkeypatch.setattr(llm_server, "server_python", lambda: Path(sys.executable))
    monkeypatch.setattr(llm_server, "LLM_DIR", tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    return gguf


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return dict(json.load(answer))


def test_serve_model_serves_the_model_for_the_block_and_stops_it(
    stubbed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(STUB))
    with serve_model("0.5b", ctx_size=4096, threads=1) as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        models = _get(f"{base_url}/models")
    assert models["data"] == [{"id": MODELS["0.5b"].name, "meta": {"n_ctx": 4096}}]
    assert (models["threads"], models["model_path"]) == (1, str(stubbed))
    with pytest.raises(urllib.error.URLError):
        _get(f"{base_url}/models")  # stopped, not left running


def test_a_server_that_dies_while_loading_fails_with_the_end_of_its_log(stubbed: Path) -> None:
    with pytest.raises(SystemExit, match="the model server exited while loading") as failure:
        start_server(MODELS["0.5b"], timeout=30)
    assert "No module named 'xllamacpp'" in str(failure.value.code)


def test_a_server_package_pip_cannot_install_fails_saying_nothing_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))  # no wheel there
    with pytest.raises(SystemExit, match=r"pip could not install xllamacpp==2026\.10\.11549"):
        server_python(tmp_path)
    assert not (tmp_path / "xllamacpp-2026.10.11549" / ".installed").exists()  # tried again
