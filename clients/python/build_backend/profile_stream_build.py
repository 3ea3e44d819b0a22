"""The PEP 517 build backend of ``profile-stream-client``: setuptools, after staging.

Inside the repository (``clients/python`` of a checkout) every hook first writes ``src/`` from
the repository's ``streams/`` and ``schemas/`` (:mod:`profile_stream_staging`), and copies the
repository's ``LICENSE`` beside ``pyproject.toml``; in an unpacked sdist, which carries both
already, it builds what is there. Editable installs are not
offered: the staged tree is a build product, and the worker's checkout is the place to edit.
"""

import shutil
import tomllib
from pathlib import Path
from typing import Any

from profile_stream_staging import roots, stage
from setuptools import build_meta as _setuptools

__all__ = [
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_wheel",
]

HERE = Path(__file__).resolve().parents[1]
REPO = HERE.parents[1]


def _in_repository() -> bool:
    return HERE == REPO / "clients" / "python" and (REPO / "streams" / "client").is_dir()


def _prepare() -> None:
    if _in_repository():
        version = tomllib.loads((HERE / "pyproject.toml").read_text())["project"]["version"]
        stage(REPO, HERE / "src", roots(HERE), version)
        shutil.copyfile(REPO / "LICENSE", HERE / "LICENSE")  # license-files reads it here
        shutil.rmtree(HERE / "build", ignore_errors=True)  # no module left from an older build
    elif not (HERE / "src" / "profile_stream").is_dir():
        raise RuntimeError(
            f"{HERE} is neither clients/python of a profile-stream checkout nor an unpacked "
            "sdist of profile-stream-client; build from the repository"
        )


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    _prepare()  # setuptools reads the package folders already
    return list(_setuptools.get_requires_for_build_wheel(config_settings))


def get_requires_for_build_sdist(config_settings: dict[str, Any] | None = None) -> list[str]:
    _prepare()
    return list(_setuptools.get_requires_for_build_sdist(config_settings))


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, Any] | None = None
) -> str:
    _prepare()
    return str(_setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings))


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    _prepare()
    return str(_setuptools.build_wheel(wheel_directory, config_settings, metadata_directory))


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    _prepare()
    return str(_setuptools.build_sdist(sdist_directory, config_settings))
