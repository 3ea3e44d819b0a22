"""Every extractor offers what the pipeline calls, so the worker does not care which one runs."""

import inspect

import pytest

from streams.extract.base import Extraction, Extractor
from streams.extract.cache import CachedExtractor
from streams.extract.llm import LLMExtractor
from streams.extract.rules import RuleExtractor

_METHODS = [
    name
    for name, _ in inspect.getmembers(Extractor, inspect.isfunction)
    if not name.startswith("_")
]


def test_the_interface_is_extract_forget_and_close() -> None:
    assert sorted(_METHODS) == ["close", "extract", "forget"]
    assert "name" in Extractor.__annotations__


@pytest.mark.parametrize("implementation", [RuleExtractor, LLMExtractor, CachedExtractor])
def test_each_extractor_has_the_interface_with_the_same_parameters(
    implementation: type,
) -> None:
    for method in _METHODS:
        ours = getattr(implementation, method)
        assert inspect.iscoroutinefunction(ours), f"{implementation.__name__}.{method}"
        expected = inspect.signature(getattr(Extractor, method)).parameters
        assert list(inspect.signature(ours).parameters) == list(expected)


def test_an_extraction_owns_its_list_of_malformed_operations() -> None:
    first, second = Extraction([]), Extraction([])
    first.malformed.append("field: required")
    assert second.malformed == [] and first.operations == []
