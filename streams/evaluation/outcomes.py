"""What the extractor and the guards did during a run, read from the worker's own counters
(``streams.metrics``): the failure modes of small models (answers cut at the output bound,
invalid JSON, values out of range, extractions given up) and each guard's drops.

A pipeline run reads its worker's ``/metrics`` at the end (the worker is the run's own, so its
counters start at zero); a direct run reads this process's registry before and after, and
keeps the difference.
"""

from schemas.evaluation import EvalOutcomes
from streams.evaluation.worker import Metrics
from streams.metrics import render

__all__ = ["local_metrics", "outcomes_between"]

_P = "profile_stream_"
#: Each field of :class:`EvalOutcomes` and the counter (and its label) it is read from.
_COUNTERS = {
    "answers_repaired": ("model_answers_repaired_total", "repair"),
    "retries": ("model_retries_total", "reason"),
    "gave_up": ("extraction_failures_total", "cause"),
    "dead_letters": ("dead_letters_total", "reason"),
    "operations_dropped": ("operations_dropped_total", "reason"),
    "operations_repaired": ("operations_repaired_total", "reason"),
}


def local_metrics() -> Metrics:
    """This process's counters now."""
    return Metrics(render().decode())


def outcomes_between(before: Metrics | None, after: Metrics) -> EvalOutcomes:
    """The counts ``after`` holds beyond ``before`` (None: nothing before), by reason; reasons
    that did not occur are left out."""
    counts: dict[str, dict[str, int]] = {}
    for field, (name, label) in _COUNTERS.items():
        start = before.by_label(_P + name, label) if before is not None else {}
        grown = {
            reason: round(value - start.get(reason, 0.0))
            for reason, value in after.by_label(_P + name, label).items()
        }
        counts[field] = {reason: n for reason, n in sorted(grown.items()) if n > 0}
    return EvalOutcomes.model_validate(counts)
