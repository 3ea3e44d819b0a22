"""The worker as built: what its web server serves, and to whom."""

from pathlib import Path

import pytest

from streams import metrics
from streams.app import create_worker
from streams.settings import load_settings
from streams.web.views import TABLE

#: Faust's production index: it answers ``{"status": "OK"}`` and nothing else.
FAUST_INDEX = "/"


def test_every_route_the_worker_serves_is_one_of_its_own_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the views in streams.web.views.TABLE, each guarded as listed there: Faust's
    /router/ pages would show anyone which worker holds each partition."""
    # The worker's gauges read a consumer this test never starts; other tests scrape them.
    monkeypatch.setattr(metrics, "gauge", lambda name, doc, read: None)
    worker = create_worker(
        load_settings(extractor="rules", data_dir=tmp_path, read_tokens="r" * 32)
    )
    worker.web.blueprints.apply(worker.web)
    served = {route.resource.canonical for route in worker.web.web_app.router.routes()}
    assert served - {FAUST_INDEX} == {route.path for route in TABLE}
