"""Model calls counted by the flush that made them: ``profile_stream_model_calls_total``.

An extractor that calls a model says what became of each call (:func:`record`); a flush holds
a ledger while it runs (:func:`calls_of`) and counts its calls once it ends, labelled with its
trigger and each call's outcome. Counting at the end is what lets a call be labelled by what
happened after it answered: a flush stopped before its version was written (fenced by a
revoke, cancelled on stop, or an error that stops the worker) counts its answered calls as
``fenced_redo``, since the next owner flushes those messages again (from the result cache
when the call had answered, so the redo need not pay twice).

A call outside a flush (``profile-stream eval --mode direct``) is counted at once, with the
reason ``none``. A coverage follow-up's calls (:mod:`streams.core.coverage`, made inside
:func:`following_up`) have the reason ``follow_up`` instead of the flush's trigger: calls no
trigger asked for, made where the model stopped early. The ledger lives in a context
variable, as the batch's ownership does (:mod:`streams.pipeline.ownership`): each batch runs
in a task of its own.
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from enum import StrEnum

from streams.metrics import MODEL_CALLS

__all__ = ["FOLLOW_UP", "CallOutcome", "calls_of", "following_up", "record"]

#: The ``reason`` of a call no flush made.
NO_FLUSH = "none"
#: The ``reason`` of a coverage follow-up's calls, in a flush or not.
FOLLOW_UP = "follow_up"


class CallOutcome(StrEnum):
    """What became of one model call (the ``outcome`` label)."""

    #: Answered and read: its operations went on to the merge.
    OK = "ok"
    #: Failed in a way that may pass (timeout, 429, 5xx, dropped connection, unreadable
    #: answer) and asked again. A timed-out call may still have been answered by the server.
    RETRIED = "retried"
    #: Cut off at the output bound with no complete operation, asked again at once.
    CUT_OFF_RETRY = "cut_off_retry"
    #: The extraction's last try failed: the flush gave up (dead letters) or the worker exits.
    FAILED = "failed"
    #: Made by a flush stopped before its version was written (its partition revoked, the
    #: worker stopping, or cancelled at the model): the next owner flushes them again.
    FENCED_REDO = "fenced_redo"


#: A flush's calls: each with its own reason (a follow-up's) or None (the flush's), and outcome.
_Ledger = list[tuple[str | None, CallOutcome]]
_ledger: ContextVar[_Ledger | None] = ContextVar("profile_stream_calls", default=None)
_follow_up: ContextVar[bool] = ContextVar("profile_stream_follow_up", default=False)


def record(outcome: CallOutcome) -> None:
    """One model call ended with ``outcome``: kept for this task's flush, or counted now."""
    own = FOLLOW_UP if _follow_up.get() else None
    ledger = _ledger.get()
    if ledger is None:
        MODEL_CALLS.labels(own or NO_FLUSH, str(outcome)).inc()
    else:
        ledger.append((own, outcome))


def following_up(follow_up: bool = True) -> AbstractContextManager[object]:
    """The calls made inside are a coverage follow-up's (``follow_up`` False: a no-op)."""
    return _following() if follow_up else nullcontext()


@contextmanager
def _following() -> Iterator[None]:
    token = _follow_up.set(True)
    try:
        yield
    finally:
        _follow_up.reset(token)


@contextmanager
def calls_of(reason: str) -> Iterator[None]:
    """Hold a ledger for a flush of ``reason``; count its calls when it ends, however."""
    ledger: _Ledger = []
    token = _ledger.set(ledger)
    stopped = True
    try:
        yield
        stopped = False
    finally:
        _ledger.reset(token)
        for own, outcome in ledger:
            if stopped and outcome is CallOutcome.OK:
                outcome = CallOutcome.FENCED_REDO
            MODEL_CALLS.labels(own or reason, str(outcome)).inc()
