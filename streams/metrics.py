"""What a worker counts, in Prometheus form on ``/metrics``. No label ever names a user."""

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "CACHE",
    "DEAD_LETTERS",
    "EVENTS_IN",
    "EXTRACTIONS",
    "EXTRACTION_FAILURES",
    "FENCED_BATCHES",
    "MESSAGES_EXTRACTED",
    "MODEL_CALLS",
    "MODEL_LATENCY",
    "MODEL_ANSWERS_REPAIRED",
    "MODEL_RETRIES",
    "OPERATIONS_DROPPED",
    "OPERATIONS_REPAIRED",
    "RATE_LIMIT_WAIT",
    "REGISTRY",
    "REVOKED_EVENTS",
    "TOKENS",
    "VERSIONS",
    "gauge",
    "render",
]

REGISTRY = CollectorRegistry(auto_describe=True)
_P = "profile_stream_"

EVENTS_IN = Counter(
    _P + "events_in", "Input events admitted or handled", ["kind"], registry=REGISTRY
)
DEAD_LETTERS = Counter(
    _P + "dead_letters", "Events sent to the dead-letter topic", ["reason"], registry=REGISTRY
)
EXTRACTIONS = Counter(_P + "extractions", "Extractions by outcome", ["outcome"], registry=REGISTRY)
EXTRACTION_FAILURES = Counter(
    _P + "extraction_failures",
    "Model extractions given up, by cause: cut_off, invalid_output, unavailable, "
    "endpoint_refused, refused, other",
    ["cause"],
    registry=REGISTRY,
)
FLUSHES = Counter(_P + "flushes", "Buffers flushed, by trigger", ["reason"], registry=REGISTRY)
BUDGET_DEFERRALS = Counter(
    _P + "budget_deferrals",
    "Flushes put off: the user's daily token budget is spent",
    registry=REGISTRY,
)
MESSAGES_EXTRACTED = Counter(
    _P + "messages_extracted",
    "Chat messages given to extractions (calls/messages = cost)",
    registry=REGISTRY,
)
MODEL_CALLS = Counter(
    _P + "model_calls",
    "HTTP calls to the model, retries included, by the flush trigger that made them (reason: "
    "size, end_of_conversation, new_conversation, idle, max_age, command, refresh; none outside "
    "a flush) and what became of each (outcome: ok, retried, cut_off_retry, failed, fenced_redo)",
    ["reason", "outcome"],
    registry=REGISTRY,
)
MODEL_LATENCY = Histogram(
    _P + "model_latency_seconds",
    "Latency of one model call",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
    registry=REGISTRY,
)
MODEL_RETRIES = Counter(
    _P + "model_retries",
    "Model calls asked again after a failed one, by reason: invalid_output (an answer that is "
    "not JSON, or has no list of operations), unavailable (a timeout, 408, 409, 429, 5xx, a "
    "dropped connection)",
    ["reason"],
    registry=REGISTRY,
)
TOKENS = Counter(_P + "model_tokens", "Tokens the model reported", ["kind"], registry=REGISTRY)
OPERATIONS_DROPPED = Counter(
    _P + "operations_dropped",
    "Extracted operations not applied, by reason: a quality guard (ungrounded_quote, "
    "cites_non_source_role, cites_unknown_message, duplicate, placeholder_value, example_value, "
    "value_not_in_message, instruction_in_message), the merge (unknown_field, invalid_value, "
    "wrong_op_for_field, locked, superseded) or a malformed item of the answer (malformed)",
    ["reason"],
    registry=REGISTRY,
)
OPERATIONS_REPAIRED = Counter(
    _P + "operations_repaired",
    "Extracted operations applied after a repair: reattributed (to the source turn holding the "
    "quote), grounded_by_value (the value's words stand in for a retyped quote)",
    ["reason"],
    registry=REGISTRY,
)
MODEL_ANSWERS_REPAIRED = Counter(
    _P + "model_answers_repaired",
    "Model answers read after a repair: code_fence, trailing_text, cut_off (the complete "
    "operations before an answer cut at the output bound), retried_cut_off (asked again)",
    ["repair"],
    registry=REGISTRY,
)
CACHE = Counter(_P + "extraction_cache", "Extraction cache lookups", ["result"], registry=REGISTRY)
RATE_LIMIT_WAIT = Counter(
    _P + "rate_limit_wait_seconds", "Time spent waiting for the limit", registry=REGISTRY
)
VERSIONS = Counter(
    _P + "profile_versions_written",
    "Profile versions written (events)",
    ["type"],
    registry=REGISTRY,
)
FENCED_BATCHES = Counter(
    _P + "fenced_batches",
    "Batches stopped unacknowledged because their partition was revoked (cancelled after the "
    "revoke grace, or refused at a write)",
    registry=REGISTRY,
)
REVOKED_EVENTS = Counter(
    _P + "revoked_events",
    "Held input events dropped unacknowledged on revoke (redelivered to the next owner)",
    registry=REGISTRY,
)
PRE_FORGET_SKIPPED = Counter(
    _P + "pre_forget_skipped",
    "Chat messages taken in before their subject's last forget (a dead letter replayed, a late "
    "copy), acknowledged and never applied; by: offset (on the forget's partition) or time",
    ["by"],
    registry=REGISTRY,
)


_GAUGES: dict[str, Gauge] = {}


def gauge(name: str, doc: str, read: Callable[[], float]) -> None:
    """A gauge whose value is read at scrape time (in-flight work, consumer lag)."""
    if name not in _GAUGES:
        _GAUGES[name] = Gauge(_P + name, doc, registry=REGISTRY)
    _GAUGES[name].set_function(read)


def render() -> bytes:
    """The registry in Prometheus text format."""
    return generate_latest(REGISTRY)
