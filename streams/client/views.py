"""What each of a worker's HTTP views is asked and answers: :class:`Worker`, one base URL and
token over a session its owner holds (a long-lived client's pool, or one call's session).

Answers are returned as the worker sent them (JSON objects as dicts); the clients type them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Unpack

import aiohttp
import orjson
from pydantic import ValidationError

from schemas import Correction, PatchOperation
from streams.client.options import CorrectionOptions, ReadOptions
from streams.client.transport import Expect, json_object, profile_url, query_of, request
from streams.errors import InvalidRequest, ProfileNotFound, ProfileNotFresh

__all__ = ["MAX_REFRESH_S", "MAX_WAIT_S", "Worker", "correction_body"]

#: The longest a worker waits for a message to be reflected (``?wait_for``), and for a refresh
#: to be applied (the read-your-writes contract's bounds).
MAX_WAIT_S = 30.0
MAX_REFRESH_S = 60.0


def _past(version: int | None, as_of: datetime | None, fields: Sequence[str]) -> dict[str, str]:
    """The query of an as-of read (empty for a read of the current profile)."""
    if as_of is not None and as_of.tzinfo is None:
        raise InvalidRequest("as_of needs a time zone: give an aware datetime")
    past = {"version": str(version)} if version is not None else {}
    past |= {"as_of": as_of.isoformat()} if as_of is not None else {}
    return past | {"fields": ",".join(fields)} if past and fields else past


def _bounded(name: str, seconds: float, most: float) -> str:
    if not 0 <= seconds <= most:
        raise InvalidRequest(f"{name} must be between 0 and {most:g} seconds, not {seconds:g}")
    return f"{seconds:g}"


def correction_body(**options: Unpack[CorrectionOptions]) -> bytes:
    """The body of a ``PATCH``: ``operations``, then a ``set`` (``unset`` for None) per value.

    Raises:
        InvalidRequest: nothing to correct, or an operation that is not a patch operation.
    """
    lock, unlock = list(options.get("lock", ())), list(options.get("unlock", ()))
    try:
        ops = [PatchOperation.model_validate(op) for op in options.get("operations", ())]
        for field, value in (options.get("values") or {}).items():
            op = "unset" if value is None else "set"
            ops.append(PatchOperation(field=field, op=op, value=value))
        correction = Correction(operations=ops, lock=lock, unlock=unlock)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(f"not a correction: {where}: {first['msg']}") from None
    if not (correction.operations or correction.lock or correction.unlock):
        raise InvalidRequest("nothing to correct: give values, operations, lock or unlock")
    return correction.model_dump_json(exclude_defaults=True).encode()


@dataclass(frozen=True)
class Worker:
    """A worker's views at ``base_url``, asked with ``token``; each request within
    ``timeout_s``, a read's 503 (a rebalance in progress) retried up to ``attempts`` times."""

    session: aiohttp.ClientSession
    base_url: str
    token: str
    timeout_s: float = 10.0
    attempts: int = 10

    async def profile(self, user_id: str, **options: Unpack[ReadOptions]) -> dict[str, Any]:
        """``GET /profiles/...``: now (with provenance or usage, or once ``wait_for`` is
        reflected) or as it was at ``version``/``as_of`` (see :class:`ReadOptions`)."""
        kind, wait_for = options.get("kind", "user"), options.get("wait_for")
        wait_s = options.get("wait_s", 10.0)
        include = [part for part in ("provenance", "usage") if options.get(part)]
        fields = options.get("fields", ())
        version, as_of = options.get("version"), options.get("as_of")
        url = profile_url(self.base_url, user_id, kind)
        past = _past(version, as_of, fields)
        if past and wait_for is not None:
            raise InvalidRequest("wait_for waits for the profile now: leave out version/as_of")
        query = past or ({"include": ",".join(include)} if include else {})
        what = "profile" if kind == "user" else f"{kind} profile"
        expect = Expect(missing=ProfileNotFound(f"no {what} for {user_id!r} at {url}"))
        timeout_s = self.timeout_s
        if wait_for is not None:
            query |= {"wait_for": wait_for, "timeout_s": _bounded("wait_s", wait_s, MAX_WAIT_S)}
            timeout_s += wait_s
            late = f"{user_id!r}'s profile does not reflect message {wait_for!r} after {wait_s:g}s"
            expect = Expect(
                missing=expect.missing,
                not_fresh=ProfileNotFresh(late, message_id=wait_for, timeout_s=wait_s),
            )
        elif past:
            expect = Expect(missing=expect.missing, detailed=True)
        answer = await self._ask("GET", url + query_of(query), expect, timeout_s=timeout_s)
        return json_object(url, answer, "profile")

    async def refresh(self, user_id: str, *, wait_s: float = 30.0) -> dict[str, Any]:
        """``POST /profiles/{user_id}/refresh``: the buffer flushed now, the profile once
        applied."""
        url = profile_url(self.base_url, user_id, suffix="/refresh")
        query = {"timeout_s": _bounded("wait_s", wait_s, MAX_REFRESH_S)}
        late = f"{user_id!r}'s buffered messages were not applied within {wait_s:g}s"
        expect = Expect(
            missing=ProfileNotFound(f"no profile for {user_id!r} at {url}"),
            not_fresh=ProfileNotFresh(late, message_id=None, timeout_s=wait_s),
        )
        answer = await self._ask(
            "POST", url + query_of(query), expect, timeout_s=self.timeout_s + wait_s
        )
        return json_object(url, answer, "profile")

    async def history(self, user_id: str, *, field: str | None = None) -> dict[str, Any]:
        """``GET /profiles/{user_id}/history``, only ``field``'s revisions when given."""
        url = profile_url(self.base_url, user_id, suffix="/history")
        expect = Expect(missing=ProfileNotFound(f"no profile for {user_id!r} at {url}"))
        query = query_of({"field": field} if field is not None else {})
        return json_object(url, await self._ask("GET", url + query, expect), "history_from")

    async def prompt(self, user_id: str) -> str:
        """``GET /profiles/{user_id}/prompt``: the ``<User Profile>`` block."""
        url = profile_url(self.base_url, user_id, suffix="/prompt")
        expect = Expect(missing=ProfileNotFound(f"no profile for {user_id!r} at {url}"))
        return (await self._ask("GET", url, expect)).decode("utf-8", "replace")

    async def command(
        self, method: str, user_id: str, *, suffix: str = "", body: Any = None
    ) -> str:
        """An admin command (``PATCH``, ``DELETE``, ``POST .../flush``, ``.../revert``); its id
        once the worker has put it on the input topic (202). Not retried: a 503 is a refusal."""
        url = profile_url(self.base_url, user_id, suffix=suffix)
        data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        answer = await request(
            self.session,
            method,
            url,
            token=self.token,
            timeout_s=self.timeout_s,
            expect=Expect(ok=202),
            body=data,
        )
        return str(json_object(url, answer, "command_id")["command_id"])

    async def _ask(
        self, method: str, url: str, expect: Expect, *, timeout_s: float | None = None
    ) -> bytes:
        return await request(
            self.session,
            method,
            url,
            token=self.token,
            timeout_s=self.timeout_s if timeout_s is None else timeout_s,
            expect=expect,
            attempts=self.attempts,
        )
