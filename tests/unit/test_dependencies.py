"""The one-way dependency rule: contracts and pure logic never reach for I/O libraries."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = [
    "partitioning",
    "profile_schema",
    "merge",
    "records",
    "prompt",
    "rules",
    "auth",
    "codecs",
    "extraction",
    "errors",
    "jsonschema_model",
    "kinds",
    "migration",
    "scheduler",
    "locomo",
    "commands",
    "completion",
]
IO_LIBRARIES = {"faust", "aiokafka", "redis", "openai", "aiohttp", "mode"}


def _imports(path: Path) -> set[str]:
    """Top-level names a module imports; relative ones as '.name' ('.' for 'from . import')."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.add("." + (node.module or "").split(".")[0])
            else:
                found.add((node.module or "").split(".")[0])
    return found


SCHEMA_FILES = sorted((ROOT / "schemas").glob("*.py"))


def test_the_files_under_test_exist() -> None:
    assert len(SCHEMA_FILES) >= 6
    assert all((ROOT / "streams" / f"{name}.py").is_file() for name in PURE)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schemas_import_only_pydantic_the_stdlib_and_themselves(path: Path) -> None:
    allowed = {"pydantic", "schemas"} | set(sys.stdlib_module_names)
    outside = {name for name in _imports(path) if not name.startswith(".") and name not in allowed}
    assert outside == set(), f"{path.name} imports {outside}"


@pytest.mark.parametrize("name", PURE)
def test_pure_streams_modules_import_no_io_library(name: str) -> None:
    imported = _imports(ROOT / "streams" / f"{name}.py")
    assert imported & IO_LIBRARIES == set(), f"streams/{name}.py imports {imported & IO_LIBRARIES}"


@pytest.mark.parametrize("name", PURE)
def test_pure_streams_modules_import_only_pure_siblings(name: str) -> None:
    siblings = {
        i.removeprefix(".") for i in _imports(ROOT / "streams" / f"{name}.py") if i.startswith(".")
    }
    assert siblings <= set(PURE), f"streams/{name}.py imports streams.{siblings - set(PURE)}"
    assert "streams" not in _imports(ROOT / "streams" / f"{name}.py") or name == "__init__"


def test_the_streams_package_itself_imports_no_io_library() -> None:
    assert _imports(ROOT / "streams" / "__init__.py") & IO_LIBRARIES == set()
    assert _imports(ROOT / "schemas" / "__init__.py") & ({"streams"} | IO_LIBRARIES) == set()
