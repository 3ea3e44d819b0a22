"""Charging a profile for the model calls spent on it: in all, and per day.

Pure. The caller names the day: a flush charges the worker's UTC day when the model was called
(``streams.pipeline.flush``), the same day the daily budget is checked against
(``streams.core.flushing.over_budget``). The messages' ``sent_at`` is the producer's word: an
old one would charge a day no check looks at, and the budget would never bite.
"""

from datetime import UTC, datetime

from schemas import ModelUsage, ProfileUsage

__all__ = ["add_usage", "charge"]


def add_usage(a: ModelUsage, b: ModelUsage) -> ModelUsage:
    """The calls and tokens of ``a`` and ``b`` together."""
    return ModelUsage(
        calls=a.calls + b.calls,
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
    )


def charge(usage: ProfileUsage | None, spent: ModelUsage, at: datetime) -> ProfileUsage | None:
    """``usage`` after ``spent`` at ``at``; the day's count starts over on a new day.

    Nothing spent (a cached answer, rules, no model call) leaves ``usage`` as it is, so a
    profile that never reached the model has no usage at all.
    """
    if spent.calls == 0 and spent.prompt_tokens == 0 and spent.completion_tokens == 0:
        return usage
    day = at.astimezone(UTC).date()  # message times are aware (ChatMessage.sent_at)
    if usage is None:
        return ProfileUsage(total=spent, day=day, today=spent)
    if day > usage.day:
        today = spent
    elif day == usage.day:
        today = add_usage(usage.today, spent)
    else:  # a late batch from an earlier day: counted in the total, today's count stands
        today = usage.today
        day = usage.day
    return ProfileUsage(total=add_usage(usage.total, spent), day=day, today=today)
