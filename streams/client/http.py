"""Profiles over a worker's HTTP API (any worker: it routes to the owner): read one, now or as
it was at a version or time (:func:`get_profile`), list its field revisions
(:func:`get_history`), render it for a system prompt (:func:`get_prompt`), correct it
(:func:`correct_profile`), roll fields back (:func:`revert_profile`) or forget it
(:func:`forget_profile`).

User ids (and kinds) are percent-quoted in every URL, so ``acme/alice`` or ``who?x`` name
exactly that user. Every failure is a :class:`~streams.errors.ProfileStreamError`: a URL that
is not ``http(s)://host[:port]`` is a ``ConfigError``; nothing listening (or no connection
within 1.2 s) fails at once with the URL and what to check; a worker that accepts but
does not answer within ``timeout_s`` raises :class:`~streams.errors.ServiceTimeout`; an answer
that is not a worker's is a :class:`~streams.errors.ServiceError` saying so.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Unpack

from streams.client.options import CorrectionOptions, ReadOptions
from streams.client.transport import client_timeout, failure, one_shot, profile_url
from streams.client.views import Worker, correction_body

__all__ = [
    "correct_profile",
    "flush_profile",
    "forget_profile",
    "get_history",
    "get_profile",
    "get_prompt",
    "refresh_profile",
    "revert_profile",
]


# The LangGraph store imports these from here, where they were before transport.py.
_failure, _profile_url, _timeout = failure, profile_url, client_timeout


@asynccontextmanager
async def _worker(
    base_url: str, token: str, timeout_s: float, attempts: int = 1
) -> AsyncIterator[Worker]:
    """A worker's views over a session of one call (a long-lived client keeps its own)."""
    profile_url(base_url, "-")  # a bad URL is a ConfigError before any session opens
    async with one_shot() as session:
        yield Worker(session, base_url, token, timeout_s, attempts)


async def get_profile(
    base_url: str,
    user_id: str,
    *,
    token: str,
    attempts: int = 10,
    timeout_s: float = 10.0,
    **options: Unpack[ReadOptions],
) -> dict[str, Any]:
    """One user's profile (or, with ``kind``, a team's, the assistant's...) as the worker
    answers it (``schemas.ProfileAnswer``: ``user_id``, ``version``, ``profile``,
    ``freshness``...); with ``provenance``, where each field's value came from too; with
    ``usage``, the model calls and tokens spent on it (in all and today). With ``version`` or
    ``as_of`` (an aware time), the profile as it was then, from the revisions the worker keeps
    (and with ``fields``, only those fields: only they need to be kept; ``provenance`` and
    ``usage`` are then left out). With ``wait_for`` (a message id), the answer comes once the
    profile reflects that message, waiting up to ``wait_s`` (at most 30) for its extraction;
    nothing is flushed for it (:func:`refresh_profile` does).

    Retries a 503 (a rebalance in progress) up to ``attempts`` times. A one-shot call: it
    opens and closes its own HTTP session (``ProfileStreamClient`` keeps one).

    Raises:
        ProfileNotFound: no profile for the user (or no such version, or none yet then).
        HistoryUnavailable: the kept revisions no longer hold that version or time; the
            message names the field and why.
        Refused: the worker answered another error status (401, 504, a 503 that lasted...),
            with the status and the worker's message.
        ServiceTimeout: the worker did not answer within ``timeout_s``.
        ServiceError: the worker cannot be reached, or what answered is not a worker.
        ConfigError: ``base_url`` is not an http(s) URL.
        InvalidRequest: ``as_of`` has no time zone, or ``wait_for`` with a past read
            (nothing is sent).
        ProfileNotFresh: ``wait_for``'s message is not reflected after ``wait_s``.
    """
    async with _worker(base_url, token, timeout_s, attempts) as worker:
        return await worker.profile(user_id, **options)


async def refresh_profile(
    base_url: str,
    user_id: str,
    *,
    token: str,
    wait_s: float = 30.0,
    attempts: int = 10,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Extract the user's buffered messages now and answer with the profile once that is
    applied (``POST /profiles/{user_id}/refresh``, a read token suffices): read-your-writes
    for messages just published. At most one model call, none when nothing is buffered.
    Waits up to ``wait_s`` (at most 60).

    Raises:
        ProfileNotFresh: the flush was not applied within ``wait_s``.
        ProfileNotFound: no profile for the user, even after the flush.
        Refused, ServiceTimeout, ServiceError, ConfigError: as :func:`get_profile`.
    """
    async with _worker(base_url, token, timeout_s, attempts) as worker:
        return await worker.refresh(user_id, wait_s=wait_s)


async def get_history(
    base_url: str,
    user_id: str,
    *,
    token: str,
    field: str | None = None,
    attempts: int = 10,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """A user's field revisions, oldest first (``GET /profiles/{user_id}/history``,
    ``schemas.HistoryAnswer``): ``{"history_from": ..., "fields": {name: {"revisions": [...],
    "truncated": ...}}}``, only ``field``'s when given. Raises as :func:`get_profile` does
    (``Refused`` 400 for a field the schema lacks)."""
    async with _worker(base_url, token, timeout_s, attempts) as worker:
        return await worker.history(user_id, field=field)


async def get_prompt(
    base_url: str, user_id: str, *, token: str, attempts: int = 10, timeout_s: float = 10.0
) -> str:
    """The user's profile as a ``<User Profile>`` block for a system prompt
    (``GET /profiles/{user_id}/prompt``). Retries and raises as :func:`get_profile` does."""
    async with _worker(base_url, token, timeout_s, attempts) as worker:
        return await worker.prompt(user_id)


async def correct_profile(
    base_url: str,
    user_id: str,
    *,
    token: str,
    timeout_s: float = 10.0,
    **options: Unpack[CorrectionOptions],
) -> str:
    """Correct a user's profile as an operator (``PATCH /profiles/{user_id}``, admin token);
    return the command id.

    ``values`` sets each field to its value (``None`` unsets it); ``operations`` are any patch
    operations (``{"field": "languages", "op": "add", "value": "Basque"}``). ``lock`` fields
    are never changed by extraction afterwards; ``unlock`` releases them. The worker checks
    the correction against the profile schema before it answers; like a forget, it applies in
    order with the user's messages, and a profile-updated event follows.

    Raises:
        InvalidRequest: nothing to correct, or an operation that is not a patch operation
            (nothing is sent).
        Refused: the worker refused: 400 with the schema's reason (an unknown field, a value
            the field refuses), 401 unknown token, 403 not an admin token, 503 commands off.
        ServiceTimeout: the worker did not answer within ``timeout_s``.
        ServiceError: the worker cannot be reached.
        ConfigError: ``base_url`` is not an http(s) URL.
    """
    body = correction_body(**options)
    async with _worker(base_url, token, timeout_s) as worker:
        return await worker.command("PATCH", user_id, body=body)


async def flush_profile(base_url: str, user_id: str, *, token: str, timeout_s: float = 10.0) -> str:
    """Ask a worker to extract a user's buffered messages now
    (``POST /profiles/{user_id}/flush``); return the command id.

    The worker answers once the command is in Kafka; the buffer is flushed when the command is
    applied, in order with the user's messages, and the new version's event follows.

    Raises:
        Refused: the worker refused (401 unknown token, 403 not an admin token, ...).
        ServiceTimeout: the worker did not answer within ``timeout_s``.
        ServiceError: the worker cannot be reached.
        ConfigError: ``base_url`` is not an http(s) URL.
    """
    async with _worker(base_url, token, timeout_s) as worker:
        return await worker.command("POST", user_id, suffix="/flush")


async def forget_profile(
    base_url: str, user_id: str, *, token: str, timeout_s: float = 10.0
) -> str:
    """Ask a worker to forget a user (``DELETE /profiles/{user_id}``); return the command id.

    The worker answers once the command is in Kafka; the profile goes when the command is
    applied, in order with the user's messages, and a ``deleted`` event follows.

    Raises:
        Refused: the worker refused (401 unknown token, 403 not an admin token, ...).
        ServiceTimeout: the worker did not answer within ``timeout_s``.
        ServiceError: the worker cannot be reached.
        ConfigError: ``base_url`` is not an http(s) URL.
    """
    async with _worker(base_url, token, timeout_s) as worker:
        return await worker.command("DELETE", user_id)


async def revert_profile(
    base_url: str,
    user_id: str,
    *,
    token: str,
    version: int,
    fields: Sequence[str] = (),
    lock: Sequence[str] = (),
    timeout_s: float = 10.0,
) -> str:
    """Ask a worker to give ``fields`` (all of them when empty) back their values at
    ``version``, and to lock ``lock`` (``POST /profiles/{user_id}/revert``, admin token);
    return the command id. Applied in order with the user's messages; a version the profile's
    revisions no longer hold is dead-lettered ``invalid_command`` (read it first with
    ``get_profile(version=..., fields=...)``). Raises as :func:`flush_profile` does (and
    ``Refused`` 400 for a body the worker refuses).
    """
    body = {"version": version, "fields": list(fields), "lock": list(lock)}
    async with _worker(base_url, token, timeout_s) as worker:
        return await worker.command("POST", user_id, suffix="/revert", body=body)
