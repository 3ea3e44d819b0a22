"""clients/python: the ``profile_stream`` package is the repository's client code with only its
imports renamed, importable without ``streams`` or ``schemas``. (Installing it in a fresh
virtualenv and running it against a worker: tests/integration/test_client_install.py.)"""

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.unit.clients import PYTHON_CLIENT, ROOT, load_staging

staging = load_staging()


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    dest = tmp_path_factory.mktemp("client-src")
    return dest, staging.stage(ROOT, dest, staging.roots(PYTHON_CLIENT), "0.0.0")


def _our_absolute_imports(source: str) -> list[str]:
    return [
        node.module or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
        and not node.level
        and (node.module or "").split(".")[0] in {"streams", "schemas"}
    ]


def test_the_client_is_made_of_the_client_package_the_contracts_and_what_they_use(
    staged: tuple[Path, list[str]],
) -> None:
    dest, modules = staged
    assert {"streams.client.http", "streams.client.events", "streams.errors"} <= set(modules)
    assert {"schemas", "schemas.events", "streams.kafka_security"} <= set(modules)
    assert not {"streams.app", "streams.settings", "streams.cli", "streams"} & set(modules)
    assert (dest / "profile_stream/client/http.py").is_file()
    assert (dest / "profile_stream/schemas/jsonschema/profile-event.schema.json").is_file()
    assert (dest / "profile_stream/py.typed").is_file()
    assert sorted(p.name for p in dest.iterdir()) == ["profile_stream"]


def test_only_import_lines_change_and_none_of_ours_stays_absolute(
    staged: tuple[Path, list[str]],
) -> None:
    dest, _ = staged
    for path in (dest / "profile_stream").rglob("*.py"):
        text = path.read_text()
        assert _our_absolute_imports(text) == [], path
        original = _original(path.relative_to(dest / "profile_stream"))
        if original is None:
            continue  # profile_stream/__init__.py, written by the staging
        before, after = original.read_text().splitlines(), text.splitlines()
        assert len(before) == len(after), path
        changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
        assert all(b.lstrip().startswith("from ") or _names_ours(b) for b, _ in changed), changed
    views = (dest / "profile_stream/client/views.py").read_text()
    assert "from profile_stream.errors import " in views and "from streams" not in views


def _names_ours(line: str) -> bool:
    return "streams." in line or "schemas." in line


def test_the_installed_docstrings_name_the_installed_package(
    staged: tuple[Path, list[str]],
) -> None:
    dest, _ = staged
    client = (dest / "profile_stream/client/client.py").read_text()
    assert ":class:`~profile_stream.client.config.ClientConfig`" in client
    assert ":class:`~profile_stream.schemas.ProfileAnswer`" in client
    for path in (dest / "profile_stream").rglob("*.py"):
        assert re.search(r"(?<![\w./])(streams|schemas)\.[a-z]", path.read_text()) is None, path


def test_the_package_exports_the_apps_api_and_no_storage_types(
    staged: tuple[Path, list[str]],
) -> None:
    dest, _ = staged
    missing, exported = _probe(
        dest,
        "import profile_stream as p;"
        "missing = [n for n in p.__all__ if not hasattr(p, n)];"
        "print(' '.join(missing)); print(' '.join(p.__all__))",
    )
    assert missing == ""
    names = set(exported.split())
    assert {"ProfileStreamClient", "AsyncProfileStreamClient", "ProfileAnswer"} <= names
    assert {"ProfileNotFresh", "ChatMessage", "ProfileEvent", "Turn", "ClientConfig"} <= names
    storage = {"ProfileRecord", "BufferedMessage", "RECORD_FORMAT", "TOMBSTONE_FORMAT"}
    assert not names & storage
    assert not names & {"CachePurgeFailed", "SendRejected", "ExtractionFailed"}


def _probe(dest: Path, code: str) -> list[str]:
    """The lines ``code`` prints, run by this interpreter isolated, the staged tree on its
    path."""
    probe = f"import sys; sys.path.insert(0, {str(dest)!r});" + code
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True, cwd=dest
    )
    return done.stdout.splitlines()


def _original(relative: Path) -> Path | None:
    parts = relative.parts
    path = ROOT / Path(*parts) if parts[0] == "schemas" else ROOT / "streams" / relative
    return path if path.exists() and relative != Path("__init__.py") else None


def test_the_staged_client_imports_neither_streams_nor_schemas(
    staged: tuple[Path, list[str]],
) -> None:
    dest, _ = staged
    version, tops = _probe(
        dest,
        "from profile_stream.client import ProfileEvents, get_profile, publish;"
        "from profile_stream.schemas import ChatMessage, ProfileEvent;"
        "import profile_stream; print(profile_stream.__version__);"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))",
    )
    assert version == "0.0.0"
    assert "profile_stream" in tops.split()
    assert not {"streams", "schemas", "faust", "redis", "openai", "click"} & set(tops.split())


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("import streams.errors\n", "import streams.errors"),
        ("import importlib\nimportlib.import_module('schemas.events')\n", "schemas.events"),
    ],
)
def test_an_import_that_cannot_be_renamed_stops_the_build(source: str, named: str) -> None:
    with pytest.raises(staging.StagingError, match=rf"x\.py:\d: .*{named}"):
        staging.rename(source, "x.py")


def test_a_module_the_client_starts_to_import_comes_along_renamed(tmp_path: Path) -> None:
    repo, dest = tmp_path / "repo", tmp_path / "dest"
    files = {
        "streams/__init__.py": "",
        "streams/client/__init__.py": "from streams.client.a import f\n",
        "streams/client/a.py": "from streams.util import f\n",
        "streams/util.py": "from schemas import X\n\ndef f() -> None: ...\n",
        "streams/app.py": "import faust\n",
        "schemas/__init__.py": "X = 1\n",
        "schemas/jsonschema/x.schema.json": "{}",
    }
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)

    modules = staging.stage(repo, dest, ["streams.client"], "1.0")

    assert modules == ["schemas", "streams.client", "streams.client.a", "streams.util"]
    util = (dest / "profile_stream/util.py").read_text()
    assert util.startswith("from profile_stream.schemas import X\n")
    assert not (dest / "profile_stream/app.py").exists()


def test_the_client_has_the_version_of_the_worker_it_was_built_with() -> None:
    def version(path: Path) -> str:
        return str(tomllib.loads(path.read_text())["project"]["version"])

    assert version(PYTHON_CLIENT / "pyproject.toml") == version(ROOT / "pyproject.toml")


def test_the_readme_lists_the_ranges_the_client_declares() -> None:
    readme = (PYTHON_CLIENT / "README.md").read_text()
    rows = dict(re.findall(r"^\| ([a-z][a-z0-9-]*) \| ([<>=][^|]*?) \|", readme, re.M))
    project = tomllib.loads((PYTHON_CLIENT / "pyproject.toml").read_text())["project"]
    declared = {}
    for requirement in project["dependencies"]:
        name, _, ranges = requirement.partition(">=")
        declared[name] = ">=" + ranges.replace(",", ", ")
    assert rows == declared
