"""Which of the repository's modules make the client, and how they become ``profile_stream``.

The client distribution is built from the worker's own sources, so the two cannot drift and no
copy is committed: the packages named in ``[tool.profile-stream-client] packages`` of
``clients/python/pyproject.toml`` (``streams.client``), the whole ``schemas`` package, and every
module of ours they import, transitively, are copied under one top-level package,
``profile_stream``, with their absolute imports renamed:

- ``from streams.X import ...`` becomes ``from profile_stream.X import ...``;
- ``from schemas import ...`` becomes ``from profile_stream.schemas import ...``.

Dotted names of ours in docstrings, comments and messages are renamed too (``streams.client.http``
becomes ``profile_stream.client.http``, ``schemas.ProfileAnswer``
``profile_stream.schemas.ProfileAnswer``), so what ``help()`` shows names what an app
imports. Relative imports stay as they are: the layout under ``profile_stream`` is the layout under
``streams`` (``profile_stream.client``, ``profile_stream.errors``, ``profile_stream.core``...)
with ``schemas`` placed beside them. Only import lines and our dotted names change, line for
line. A module that reaches our code in a way this cannot rename (``import streams.x``,
``import_module`` with a literal name) stops the build, naming the file and line.

Standard library only: it runs inside the build backend and in the unit tests.
"""

import ast
import re
import shutil
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["OURS", "PACKAGE", "StagingError", "closure", "rename", "roots", "stage"]

#: The import package the client installs, its only top-level name.
PACKAGE = "profile_stream"
#: Our top-level packages in the repository.
OURS = ("streams", "schemas")

_FROM = re.compile(r"\bfrom(\s+)(streams|schemas)\b")
#: A dotted name of ours in text (``streams.client``, ``schemas.ChatMessage``), not a part of a
#: longer name (``profile_stream.schemas``) nor a file path (``streams/client``).
_DOTTED = re.compile(r"(?<![\w./])(streams|schemas)\.(?=[A-Za-z_])")
_INIT = '''"""profile-stream's Python client: publish chat turns, read profiles (read-your-writes
included), follow profile events::

    from profile_stream import ProfileStreamClient       # AsyncProfileStreamClient for asyncio

    with ProfileStreamClient() as ps:                     # PROFILE_STREAM_URL, _TOKEN, _KAFKA_*...
        turn = ps.publish_turn("alice", "I'm Alice from California", "Hi Alice!")
        print(ps.refresh("alice").profile)

This package holds the app's API: the clients, their configuration and errors, and the
contracts they exchange. ``profile_stream.client`` also has the one-shot functions
(``publish_turn``, ``get_profile``...) and ``profile_stream.client.langgraph_store`` LangGraph's
store (the ``langgraph`` extra); ``profile_stream.schemas`` every contract. Built from the
repository's streams/client/ and schemas/ folders; nothing of the worker (Faust, RocksDB, Redis,
the model client) is in it.
"""

from profile_stream.client import (
{client_names}
)
from profile_stream.schemas import (
{contract_names}
)

__version__ = "{version}"
__all__ = [
{exported}
]
'''


class StagingError(Exception):
    """The client cannot be built from the sources as they are; the message says where."""


#: The contracts ``import profile_stream`` gives beside the client's classes: what an app sends
#: and receives, none of the worker's storage types.
CONTRACTS = (
    "ChatMessage",
    "FieldChange",
    "FieldRevisions",
    "Freshness",
    "HistoryAnswer",
    "PatchOperation",
    "ProfileAnswer",
    "ProfileEvent",
    "UsageAnswer",
    "UserProfile",
)


def _client_classes(repo: Path) -> list[str]:
    """The classes ``streams.client`` exports (its ``__all__``, the functions left out): the
    clients, their configuration and errors."""
    tree = ast.parse((repo / "streams" / "client" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__":
            names = ast.literal_eval(node.value)
            return [name for name in names if name[:1].isupper()]
    return []  # a client without exports (the tests' small repositories)


def _init(repo: Path, version: str) -> str:
    """``profile_stream/__init__.py``: the app's API at the top of the package."""
    classes = _client_classes(repo)
    return _INIT.format(
        version=version,
        client_names="\n".join(f"    {name}," for name in classes),
        contract_names="\n".join(f"    {name}," for name in CONTRACTS),
        exported="\n".join(f'    "{name}",' for name in sorted([*classes, *CONTRACTS])),
    )


def roots(client_dir: Path) -> list[str]:
    """The repository packages the client is made of (from the client's pyproject)."""
    config = tomllib.loads((client_dir / "pyproject.toml").read_text())
    return [str(p) for p in config["tool"]["profile-stream-client"]["packages"]]


def _path_of(repo: Path, module: str) -> Path | None:
    base = repo.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_modules(repo: Path, package: str) -> Iterator[str]:
    top = repo.joinpath(*package.split("."))
    if not (top / "__init__.py").is_file():
        raise StagingError(f"{package} is not a package under {repo}")
    for path in sorted(top.rglob("*.py")):
        parts = path.relative_to(repo).with_suffix("").parts
        yield ".".join(p for p in parts if p != "__init__")


def _imported(module: str, path: Path) -> Iterator[str]:
    """Names of ours this module imports (relative imports resolved); ``from a import b``
    yields ``a`` and ``a.b``, whichever of them is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def closure(repo: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of ours the client needs, by dotted name: the ``packages`` and ``schemas``
    whole, what they import, and the packages on the way to each (``streams`` itself, whose
    place ``profile_stream/__init__.py`` takes, excepted)."""
    todo = [m for p in [*packages, "schemas"] for m in _package_modules(repo, p)]
    found: dict[str, Path] = {}
    while todo:
        module = todo.pop()
        if module in found or module == "streams":
            continue
        path = _path_of(repo, module)
        if path is None:
            continue  # ``from a import name``: a name in a, not a module
        found[module] = path
        parent = module.rpartition(".")[0]
        todo += [parent] if parent else []
        todo += [n for n in _imported(module, path) if n.split(".")[0] in OURS]
    return found


def _target(module: str, path: Path) -> Path:
    """Where a module goes under ``profile_stream``."""
    parts = module.split(".")
    parts = parts[1:] if parts[0] == "streams" else parts
    name = "__init__" if path.name == "__init__.py" else parts.pop()
    return Path(PACKAGE, *parts, f"{name}.py")


def _unrenamable(node: ast.Import | ast.Call) -> str | None:
    """Why an import of ours in this node cannot be renamed, if it is one."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] in OURS:
                return f"`import {alias.name}` (write `from ... import ...`)"
    elif getattr(node.func, "attr", None) == "import_module":
        arg = node.args[0] if node.args else None
        if isinstance(arg, ast.Constant) and str(arg.value).split(".")[0] in OURS:
            return f"import_module({arg.value!r})"
    return None


def rename(source: str, where: str) -> str:
    """``source`` with its absolute imports of ours renamed under ``profile_stream``.

    Raises:
        StagingError: an import of ours that cannot be renamed.
    """
    lines = source.splitlines(keepends=True)
    for node in ast.walk(ast.parse(source, filename=where)):
        if isinstance(node, ast.Import | ast.Call):
            why = _unrenamable(node)
            if why is not None:
                raise StagingError(f"{where}:{node.lineno}: {why} cannot be renamed for the client")
        elif isinstance(node, ast.ImportFrom) and not node.level:
            if (node.module or "").split(".")[0] in OURS:
                i = node.lineno - 1
                lines[i] = _FROM.sub(_renamed, lines[i], count=1)
    return "".join(_DOTTED.sub(_dotted, line) for line in lines)


def _dotted(match: re.Match[str]) -> str:
    return f"{PACKAGE}." if match[1] == "streams" else f"{PACKAGE}.schemas."


def _renamed(match: re.Match[str]) -> str:
    top = PACKAGE if match[2] == "streams" else f"{PACKAGE}.schemas"
    return f"from{match[1]}{top}"


def stage(repo: Path, dest: Path, packages: Iterable[str], version: str) -> list[str]:
    """Write the client's ``profile_stream`` package under ``dest`` (emptied first); returns
    the repository modules it was made of, sorted.

    Raises:
        StagingError: a module cannot be renamed, or a package named is missing.
    """
    modules = closure(repo, packages)
    out = dest / PACKAGE
    if out.exists():
        shutil.rmtree(out)
    for module, path in sorted(modules.items()):
        target = dest / _target(module, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rename(path.read_text(), str(path.relative_to(repo))))
    shutil.copytree(repo / "schemas" / "jsonschema", out / "schemas" / "jsonschema")
    (out / "__init__.py").write_text(_init(repo, version))
    (out / "py.typed").write_text("")
    return sorted(modules)
