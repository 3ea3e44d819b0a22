"""Shared test configuration: the repository root is importable (tests.fakes, bench)."""

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fault-kills",
        default="10",
        help="kill -9 count of the fault suite's kill test (default 10)",
    )
