"""Warnings about a dependency that went away: the first at once, then at most one a minute.

A worker keeps going without Redis (no cache, local rate limits); a warning per request would
flood the log for as long as Redis is down.
"""

import logging
import time

__all__ = ["OutageWarning"]


class OutageWarning:
    """Logs ``message % exc`` at WARNING, at most once per ``interval_s``."""

    def __init__(self, logger: logging.Logger, message: str, interval_s: float = 60.0) -> None:
        self._logger, self._message, self._interval_s = logger, message, interval_s
        self._last = -float("inf")

    def __call__(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last >= self._interval_s:
            self._last = now
            self._logger.warning(self._message, exc)
