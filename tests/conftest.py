"""Shared test configuration: the repository root is importable (tests.fakes, bench)."""

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fault-kills",
        default="10",
        help="kill -9 count of the fault suite's kill test (default 10)",
    )
    parser.addoption(
        "--cluster-kills",
        default="1",
        help="broker kills of the three-broker fault test, each during a backlog of its own "
        "(default 1: the short form `make test` runs; `make test-cluster` runs more)",
    )
    parser.addoption(
        "--processing-guarantee",
        default=None,
        choices=["at_least_once", "exactly_once"],
        help="PROFILE_STREAM_PROCESSING_GUARANTEE of every worker the integration tests start, "
        "unless a test sets its own (default: the worker's default)",
    )
