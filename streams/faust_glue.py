"""Every touch of Faust (and aiokafka) internals, in one module.

Faust 0.15.3 has no public API for a few things the worker needs; each hook here names the
private attribute it reads or overrides, and ``tests/unit/streams/test_faust_glue.py`` checks
each one against the installed Faust, so an upgrade is a one-file review.
"""

from typing import Any, cast

import faust
from mode.utils.queues import FlowControlEvent

__all__ = ["keep_fetched_events_on_resume", "tables_recovered"]


def tables_recovered(app: faust.App) -> bool:
    """Whether the worker finished restoring its table partitions after the last rebalance.

    Internal: ``app.tables.recovery.completed`` (an ``asyncio.Event``), no public accessor.
    """
    return bool(cast(Any, app.tables).recovery.completed.is_set())


class _ResumeKeepsRunningQueues(FlowControlEvent):
    """Faust's flow control, except that resuming a flow that already runs empties nothing.

    Faust empties every stream buffer on each ``flow_control.resume()``. Recovery calls it
    again once the tables are restored, right after resuming the input partitions and awaiting
    the seek to the committed offsets (``Recovery.on_recovery_completed``; ``_resume_streams``
    likewise). The fetcher runs during that await, so the buffer then holds events that were
    fetched and marked read but not yet given to the agent: emptied, they are never acknowledged
    and never fetched again. An event lost alone on its partition leaves a gap of exactly one in
    the acknowledged offsets, which ``Consumer._new_offset`` commits past (faust #606): the
    message is gone. A resume after a suspend (a rebalance) still empties the buffers: what they
    hold may come from partitions this worker no longer owns.
    """

    def resume(self) -> None:
        if self.is_active():
            return
        super().resume()


def keep_fetched_events_on_resume(app: faust.App) -> None:
    """Stop Faust from dropping fetched input events when recovery resumes a running flow.

    Internal: replaces ``App.flow_control`` (a cached property, ``FlowControlEvent``) before any
    stream queue registers with it; call right after creating the app.
    """
    assert "flow_control" not in app.__dict__, "flow control already in use"  # noqa: S101
    # loop=None: bound on first wait, inside the worker's loop, as Faust binds its own lazily.
    cast(Any, app).flow_control = _ResumeKeepsRunningQueues()
