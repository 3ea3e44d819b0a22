"""What the pipeline run reads from its worker's ``/metrics``, and when it calls the run over."""

from streams.evaluation.pipeline import _settled
from streams.evaluation.worker import Metrics

SCRAPE = """\
# HELP profile_stream_model_tokens_total Tokens the model reported
# TYPE profile_stream_model_tokens_total counter
profile_stream_model_tokens_total{kind="prompt"} 1200.0
profile_stream_model_tokens_total{kind="completion"} 80.0
profile_stream_events_in_total{kind="chat"} 8.0
profile_stream_dead_letters_total{reason="extraction_failed"} 2.0
profile_stream_dead_letters_total{reason="invalid_message"} 1.0
profile_stream_consumer_lag 0.0
profile_stream_buffered_users 0.0
profile_stream_in_flight_extractions 0.0
profile_stream_pending_events 0.0
"""


def test_samples_are_summed_over_their_labels_or_picked_by_one() -> None:
    metrics = Metrics(SCRAPE)
    assert metrics.total("profile_stream_dead_letters_total") == 3
    assert metrics.total("profile_stream_model_tokens_total", 'kind="completion"') == 80
    assert metrics.total("profile_stream_model_calls_total") == 0  # not scraped yet


def test_the_run_is_over_once_every_message_is_read_and_nothing_waits() -> None:
    assert _settled(Metrics(SCRAPE), published=8)
    assert not _settled(Metrics(SCRAPE), published=9)  # one not read yet
    for gauge in ("consumer_lag", "buffered_users", "in_flight_extractions", "pending_events"):
        busy = SCRAPE.replace(f"profile_stream_{gauge} 0.0", f"profile_stream_{gauge} 1.0")
        assert not _settled(Metrics(busy), published=8), gauge
