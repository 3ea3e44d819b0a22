"""A worker leaves its start-up objects out of the garbage collector's walks and collects its
young generation less often (bench/README.md, "Third pass": the collector was about a fifth of
the worker's CPU at the default settings)."""

import gc
from collections.abc import Iterator

import faust
import pytest

from streams.cli.worker import _service_worker


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector")
async def test_objects_made_before_the_start_are_frozen_and_young_collections_are_rarer() -> None:
    calls = []
    worker = _service_worker(
        faust.App("gc-test", autodiscover=False), "warning", lambda: calls.append("prepared")
    )
    await worker.on_execute()
    assert calls == ["prepared"]
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] > 700
