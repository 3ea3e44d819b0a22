"""What the pipeline run reads from its worker's ``/metrics``, and when it calls the run over."""

from schemas.evaluation import EvalOutcomes
from streams.evaluation.outcomes import outcomes_between
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


def test_the_failure_modes_and_guard_drops_are_read_by_reason() -> None:
    scrape = SCRAPE + (
        'profile_stream_model_answers_repaired_total{repair="cut_off"} 2.0\n'
        'profile_stream_model_retries_total{reason="invalid_output"} 1.0\n'
        'profile_stream_extraction_failures_total{cause="cut_off"} 1.0\n'
        'profile_stream_operations_dropped_total{reason="ungrounded_quote"} 4.0\n'
        'profile_stream_operations_dropped_total{reason="duplicate"} 0.0\n'
        'profile_stream_operations_repaired_total{reason="reattributed"} 3.0\n'
    )
    outcomes = outcomes_between(None, Metrics(scrape))
    assert outcomes == EvalOutcomes(
        answers_repaired={"cut_off": 2},
        retries={"invalid_output": 1},
        gave_up={"cut_off": 1},
        dead_letters={"extraction_failed": 2, "invalid_message": 1},
        operations_dropped={"ungrounded_quote": 4},  # a reason that never occurred is left out
        operations_repaired={"reattributed": 3},
    )
    before = Metrics('profile_stream_operations_dropped_total{reason="ungrounded_quote"} 1.0\n')
    assert outcomes_between(before, Metrics(scrape)).operations_dropped == {"ungrounded_quote": 3}
