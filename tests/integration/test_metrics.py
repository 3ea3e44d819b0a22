"""/metrics speaks Prometheus and its counters follow what the worker does."""

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.llm_server import FakeLLM

from .conftest import StartWorker
from .harness import Kafka, Names, message


async def scrape(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = sample.value
    return values


async def test_counters_move_as_events_flow(
    start_worker: StartWorker, kafka: Kafka, names: Names, fake_llm: FakeLLM
) -> None:
    fake_llm.on("I speak Spanish", {"field": "languages", "op": "add", "value": "Spanish"})
    worker = await start_worker()
    before = await scrape(worker.url)
    assert "profile_stream_consumer_lag{}" in before

    await kafka.send(names.input, message("mia", "I speak Spanish"))
    await kafka.send(names.input, b"not json", key=b"mia")
    await kafka.read(names.output, lambda r: len(r) >= 1)
    await kafka.read(names.dlq, lambda r: len(r) >= 1)
    after = await scrape(worker.url)

    def moved(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert moved("profile_stream_events_in_total{kind=chat}") == 1
    assert moved("profile_stream_dead_letters_total{reason=not_json}") == 1
    assert moved("profile_stream_extractions_total{outcome=ok}") == 1
    assert moved("profile_stream_model_calls_total{outcome=ok,reason=idle}") == 1
    assert moved("profile_stream_messages_extracted_total{}") == 1
    assert moved("profile_stream_profile_versions_written_total{type=updated}") == 1
    assert moved("profile_stream_extraction_cache_total{result=miss}") == 1
    assert moved("profile_stream_model_latency_seconds_count{}") == 1
    assert not any("mia" in name for name in after), "a metric label names a user"
