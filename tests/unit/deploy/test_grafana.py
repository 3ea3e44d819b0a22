"""deploy/grafana: every query names a metric (and labels) a worker really exports."""

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams import metrics
from streams.app import create_worker
from streams.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD: dict[str, Any] = json.loads((ROOT / "deploy/grafana/profile-stream.json").read_text())
PREFIX = "profile_stream_"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum")}
TARGET_LABELS = {"job", "instance", "le"}  # added by Prometheus, or the histogram's buckets


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


PANELS = list(_panels(DASHBOARD["panels"]))
EXPRS = [t["expr"] for p in PANELS for t in p.get("targets", [])]
VARIABLE_QUERIES = [
    v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
    for v in DASHBOARD["templating"]["list"]
    if v["type"] == "query"
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Sample name -> label names, for every metric a built (not started) worker registers.

    The worker's gauges read its scheduler and consumer at scrape time; here they are
    registered under their real names with a constant in place of the reading.
    """
    real_gauge = metrics.gauge

    def registered(name: str, doc: str, read: Callable[[], float]) -> None:
        real_gauge(name, doc, lambda: 0.0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "gauge", registered)
        create_worker(load_settings(extractor="rules", data_dir=tmp_path_factory.mktemp("data")))
    names: dict[str, set[str]] = {}
    for family in metrics.REGISTRY.collect():
        collector = metrics.REGISTRY._names_to_collectors[family.name]
        labels = set(getattr(collector, "_labelnames", ()))
        for suffix in SUFFIXES.get(family.type, ("",)):
            names[family.name + suffix] = labels
    return names


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(rf"\b{PREFIX}[a-z0-9_]+", expr))


def test_dashboard_has_the_panels_operators_need() -> None:
    titles = {p["title"] for p in PANELS if p["type"] != "row"}
    for wanted in [
        "Input events by kind",
        "Dead letters by reason",
        "Extractions by outcome",
        "Model calls per message",
        "Model latency",
        "Model tokens per minute",
        "Cache hit ratio",
        "Rate-limit wait",
        "In-flight extractions",
        "Pending events",
        "Consumer lag",
        "Profile versions written",
    ]:
        assert wanted in titles


def test_every_query_uses_a_profile_stream_metric() -> None:
    assert EXPRS
    for expr in EXPRS + VARIABLE_QUERIES:
        assert _metric_names(expr), f"no {PREFIX}* metric in {expr!r}"


def test_every_metric_name_is_exported(exported: dict[str, set[str]]) -> None:
    assert f"{PREFIX}consumer_lag" in exported, "the worker's gauges were not registered"
    for expr in EXPRS + VARIABLE_QUERIES:
        unknown = _metric_names(expr) - set(exported)
        assert not unknown, f"{expr!r} names metrics no worker exports: {sorted(unknown)}"


def test_every_label_is_one_of_the_metrics(exported: dict[str, set[str]]) -> None:
    for expr in EXPRS:
        known = TARGET_LABELS.union(*(exported.get(n, set()) for n in _metric_names(expr)))
        used = {
            label.strip()
            for group in re.findall(r"\bby\s*\(([^)]*)\)", expr)
            for label in group.split(",")
        }
        for matchers in re.findall(r"\{([^}]*)\}", expr):
            used |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
        assert used <= known, f"{expr!r} uses labels {sorted(used - known)}"


def test_quantiles_come_from_the_histogram_buckets() -> None:
    for expr in EXPRS:
        if "histogram_quantile" in expr:
            assert re.search(r"_bucket\{[^}]*\}\[[^]]+\]\)\)\)", expr)
            assert "by (le)" in expr


def test_panels_are_well_formed() -> None:
    ids = [p["id"] for p in PANELS]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in DASHBOARD["templating"]["list"]}
    for panel in PANELS:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"]
        for target in panel["targets"]:
            for name in re.findall(r"\$(\w+)", target["expr"]):
                assert name in variables or name.startswith("__"), name
    assert DASHBOARD["uid"] and DASHBOARD["title"]


def test_metrics_named_in_the_docs_are_exported(exported: dict[str, set[str]]) -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        unknown = _metric_names(page.read_text()) - set(exported)
        assert not unknown, f"{page.name} names metrics no worker exports: {sorted(unknown)}"
