"""The Faust internals ``streams.faust_glue`` relies on, checked against the installed Faust."""

import asyncio

import faust

from streams.faust_glue import keep_fetched_events_on_resume


def test_resuming_a_running_flow_keeps_the_events_already_queued() -> None:
    async def scenario() -> tuple[int, int, bool]:
        app = faust.App("glue-test", autodiscover=False)
        keep_fetched_events_on_resume(app)
        queue = app.FlowControlQueue(maxsize=10, clear_on_resume=True)  # as a stream's buffer
        app.flow_control.resume()  # start of recovery: the flow was suspended
        queue.put_nowait("fetched")
        app.flow_control.resume()  # end of recovery: the flow already runs
        kept = queue.qsize()
        app.flow_control.suspend()  # a rebalance
        app.flow_control.resume()
        return kept, queue.qsize(), app.flow_control.is_active()

    kept, after_rebalance, active = asyncio.run(scenario())
    assert kept == 1  # Faust's own flow control would have emptied it
    assert after_rebalance == 0  # what a suspended flow held may be for revoked partitions
    assert active
