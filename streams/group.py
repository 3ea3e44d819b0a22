"""How a worker joins its group: where a new group starts reading, and static membership.

Wiring only: the decisions are in :mod:`streams.core.start_position`, the Faust hooks in
:mod:`streams.faust_glue`.
"""

import logging
from collections.abc import Callable, Mapping

import faust

from streams.core.start_position import RetainedRange, plan_first_start
from streams.faust_glue import StartPlan, refuse_assignments_for_another_url, start_new_partitions
from streams.pipeline.policy import Exit, exit_for_redelivery
from streams.settings import Settings

__all__ = ["joining_the_group"]

logger = logging.getLogger(__name__)


def joining_the_group(app: faust.App, settings: Settings) -> None:
    """Start a new group where ``PROFILE_STREAM_START_FROM`` says (logging what that costs),
    and with a ``PROFILE_STREAM_GROUP_INSTANCE_ID``, refuse another worker's partitions."""
    start_new_partitions(
        app, settings.input_topic, settings.start_position.at_ms, _first_start(settings)
    )
    if settings.group_instance_id is not None:
        refuse_assignments_for_another_url(app, _refuse_assignment(settings))


def _first_start(settings: Settings) -> StartPlan:
    def plan(partitions: Mapping[int, RetainedRange]) -> Mapping[int, int]:
        first = plan_first_start(settings.start_position, partitions)
        # Before the streams resume: what this worker is about to extract, as a count.
        logger.info(
            "first start topic=%s new_partitions=%d start_from=%s to_extract=%d skipped=%d%s",
            settings.input_topic,
            len(partitions),
            settings.start_position,
            first.to_extract,
            first.skipped,
            first.hint,
        )
        return first.offsets

    return plan


def _refuse_assignment(settings: Settings) -> Callable[[str], None]:
    def refuse(url: str) -> None:
        exit_for_redelivery(
            Exit(
                f"the group gave this worker the partitions of the worker at {url}: "
                f"PROFILE_STREAM_GROUP_INSTANCE_ID={settings.group_instance_id} is that "
                "worker's; give each worker its own id, and keep a worker's id with its "
                "PROFILE_STREAM_WEB_HOST and PROFILE_STREAM_WEB_PORT (or wait "
                "PROFILE_STREAM_SESSION_TIMEOUT_S before it comes back under another address)"
            )
        )

    return refuse
