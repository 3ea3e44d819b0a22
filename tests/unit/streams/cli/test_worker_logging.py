"""The worker's log level is what the operator set: Faust's spinner must not lower it."""

import logging
from collections.abc import Iterator

import faust
import pytest

from streams.cli.worker import _service_worker


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.mark.parametrize(
    ("name", "level"), [("warning", logging.WARNING), ("error", logging.ERROR)]
)
def test_debug_records_are_not_built_at_warning_and_above(
    root_logger: logging.Logger, name: str, level: int
) -> None:
    worker = _service_worker(faust.App("logging-test", autodiscover=False), name, lambda: None)
    worker._setup_logging()
    # Plain Faust sets the root logger to DEBUG here so its spinner sees every record; then each
    # library's debug record is built and formatted on the hot path.
    assert root_logger.level == level
    assert not logging.getLogger("httpcore2").isEnabledFor(logging.DEBUG)
    assert worker.spinner is None
