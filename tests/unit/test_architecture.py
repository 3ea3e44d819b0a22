"""The house rules a folder promises: what each package may import, and how large things grow.

The dependency rule is written in each package's docstring (``streams/__init__.py`` lists them);
this test is what keeps it true. It walks the source with ``ast``, so it needs no import.
"""

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.clients import PYTHON_CLIENT, load_staging

ROOT = Path(__file__).resolve().parents[2]
STDLIB = set(sys.stdlib_module_names)
IO = {"faust", "mode", "aiokafka", "redis", "openai", "aiohttp", "rocksdict", "prometheus_client"}

# Per package: the third-party libraries and the streams modules it may import. A module path
# is allowed when it equals an entry or sits below one.
ALLOWED: dict[str, tuple[set[str], set[str]]] = {
    "schemas": ({"pydantic"}, set()),
    "streams.errors": (set(), set()),
    # pydantic_core: pydantic's own engine (its SchemaError, for a pattern it cannot compile).
    "streams.core": ({"pydantic", "pydantic_core", "orjson"}, {"streams.core", "streams.errors"}),
    "streams.extract": (
        {"pydantic", "orjson", "openai", "redis", "prometheus_client"},
        {
            "streams.core",
            "streams.errors",
            "streams.extract",
            "streams.metrics",
            "streams.settings",
        },
    ),
    "streams.pipeline": (
        {"pydantic", "orjson"},
        {
            "streams.core",
            "streams.errors",
            "streams.pipeline",
            "streams.metrics",
            "streams.settings",
            "streams.extract.base",
            "streams.extract.calls",  # a flush's ledger of model calls, for the metric
        },
    ),
    "streams.web": (
        {"pydantic", "orjson", "aiohttp", "faust", "prometheus_client"},
        {
            "streams.core",
            "streams.errors",
            "streams.web",
            "streams.metrics",
            "streams.settings",
            "streams.faust_glue",
            "streams.extract.prompt",  # the profile as a prompt block, for GET .../prompt
            "streams.version",  # the OpenAPI document's info.version
        },
    ),
    "streams.client": (
        {"pydantic", "orjson", "aiokafka", "aiohttp"},
        # streams.kafka_security: the one place a Kafka connection's TLS and SASL are built;
        # streams.core.partitioning: Kafka's partitioner, for a chat turn sent as one batch.
        {
            "streams.core.codecs",
            "streams.core.partitioning",
            "streams.errors",
            "streams.client",
            "streams.kafka_security",
        },
    ),
    # The langgraph extra's one module: the rest of the client installs without langgraph.
    "streams.client.langgraph_store": (
        {"pydantic", "orjson", "aiohttp", "langgraph"},
        {"streams.errors", "streams.client"},
    ),
    # The evaluation's runners: the worker's own extraction (pipeline.flush), the client to
    # publish and read profiles back, a worker process of their own.
    "streams.evaluation": (
        {"pydantic", "aiohttp", "prometheus_client"},
        {
            "streams.core",
            "streams.errors",
            "streams.evaluation",
            "streams.metrics",
            "streams.settings",
            "streams.extract.llm",
            "streams.pipeline.flush",
            "streams.client",
        },
    ),
    "streams.kafka_security": ({"pydantic", "aiokafka"}, {"streams.errors", "streams.kafka_oauth"}),
    # OAUTHBEARER's token-provider hook, for kafka_security alone.
    "streams.kafka_oauth": ({"aiokafka"}, {"streams.errors"}),
}
INTERNALS = (
    "_current_event",
    "_committed_offset",
    "send_changelog",
    "recovery.completed",
    "_create_topic",
    "_new_consumer_thread",
    "seek_to_committed",
    "_transaction_producers",
    "_trn_locks",
    "_txn_manager",
    "_seek_offsets",
    "_db_for_partition",
)


def _modules() -> Iterator[tuple[str, Path]]:
    for top in ("schemas", "streams"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(p for p in parts if p != "__init__"), path


MODULES = list(_modules())


def _imports(module: str, path: Path) -> set[str]:
    """Absolute names this module imports (relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            found.add(base)
            if base in {"streams", "schemas"} or base.startswith("streams."):
                found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _rule(module: str) -> tuple[set[str], set[str]] | None:
    matches = [k for k in ALLOWED if module == k or module.startswith(k + ".")]
    return ALLOWED[max(matches, key=len)] if matches else None


def _under(name: str, prefixes: set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_streams_module(name: str) -> bool:
    """``from streams.core import codecs`` yields both ``streams.core`` and the module."""
    return name == "streams" or name.startswith("streams.")


@pytest.mark.parametrize(
    ("module", "path"),
    [m for m in MODULES if _rule(m[0])],
    ids=[m for m, _ in MODULES if _rule(m)],
)
def test_a_package_imports_only_what_its_docstring_allows(module: str, path: Path) -> None:
    libraries, ours = _rule(module) or (set(), set())
    outside = set()
    for name in _imports(module, path):
        top = name.split(".")[0]
        if top in STDLIB or top in libraries:
            continue
        if top == "schemas":  # the contracts: every package may read them
            continue
        if _is_streams_module(name) and (_under(name, ours) or _parent_of_allowed(name, ours)):
            continue
        outside.add(name)
    assert outside == set(), f"{module} imports {sorted(outside)}"


def _parent_of_allowed(name: str, ours: set[str]) -> bool:
    """``from streams.extract import base`` names the package on the way to an allowed module."""
    return any(p.startswith(name + ".") for p in ours)


@pytest.mark.parametrize("module", ["streams.core", "streams.pipeline", "schemas"])
def test_the_rule_would_catch_a_forbidden_import(module: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import faust\nfrom streams.app import create_worker\n")
    libraries, ours = _rule(module + ".bad") or (set(), set())
    names = _imports(module + ".bad", bad)
    assert "faust" in names and "faust" not in libraries
    assert not _under("streams.app", ours)


def test_schemas_never_import_streams() -> None:
    for module, path in MODULES:
        if module.startswith("schemas"):
            assert not any(n.startswith("streams") for n in _imports(module, path)), module


def test_faust_internals_are_touched_in_one_module() -> None:
    touching = {
        module
        for module, path in MODULES
        if any(internal in path.read_text() for internal in INTERNALS)
    }
    # One package, a module per part of Faust it works around (tables, transport, web).
    assert all(m.startswith("streams.faust_glue.") for m in touching), sorted(touching)


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_no_module_is_over_400_lines(module: str, path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= 400, f"{module} has {lines} lines"


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_no_function_is_over_60_lines(module: str, path: Path) -> None:
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == [], f"{module}: {long}"


def test_core_and_pipeline_never_touch_io_libraries() -> None:
    for module, path in MODULES:
        if module.startswith(("streams.core", "streams.pipeline")):
            tops = {n.split(".")[0] for n in _imports(module, path)}
            assert tops & IO == set(), f"{module} imports {tops & IO}"


#: Libraries only the worker uses: the client distribution must import none of them.
WORKER_ONLY = {
    "faust",
    "mode",
    "rocksdict",
    "redis",
    "openai",
    "click",
    "prometheus_client",
    "pydantic_settings",
}


def _client_imports() -> dict[str, set[str]]:
    """Third-party top-level names the client distribution's modules import, with importers."""
    staging = load_staging()
    found: dict[str, set[str]] = {}
    for module, path in staging.closure(ROOT, staging.roots(PYTHON_CLIENT)).items():
        for name in _imports(module, path):
            top = name.split(".")[0]
            if top not in STDLIB and top not in {"streams", "schemas"}:
                found.setdefault(top, set()).add(module)
    return found


def test_the_client_distribution_imports_only_the_dependencies_it_declares() -> None:
    """clients/python ships streams.client and every module of ours it reaches: none of them
    may need the worker's libraries, and each library it needs is in its pyproject."""
    project = tomllib.loads((PYTHON_CLIENT / "pyproject.toml").read_text())["project"]
    requirements = [
        *project["dependencies"],
        *(r for extra in project.get("optional-dependencies", {}).values() for r in extra),
    ]
    declared = {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].replace("-", "_") for r in requirements}
    imported = _client_imports()
    assert {name: imported[name] for name in imported.keys() & WORKER_ONLY} == {}
    assert {name: imported[name] for name in imported.keys() - declared} == {}
    assert {"aiokafka", "aiohttp", "pydantic", "orjson"} <= imported.keys()
