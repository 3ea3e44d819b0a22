"""LangGraph's long-term memory store over profile-stream: :class:`ProfileStreamStore`, for apps
written like LangMem's profile guide (``store.search(("users", user_id, "profile"))``).

A profile is the one item of its namespace, under the key :data:`PROFILE_KEY`:
``("users", user_id, "profile")`` is a user's (the guide's spelling; ``"user"`` works too), and
``(kind, subject, "profile")`` a profile of another kind the workers declare, such as
``("team", "sales-emea", "profile")``. What each store call does:

- ``get`` / ``search`` (a profile namespace, or its ``(label, subject)`` prefix): ``GET
  /profiles/...``; the profile as a :class:`ProfileItem` whose ``value`` is the profile, with
  its version, schema, locks and per-field provenance beside it; None or ``[]`` when there is
  none. ``filter`` compares profile fields for equality.
- ``put(namespace, PROFILE_KEY, {field: value, ...})``: ``PATCH``, an operator correction of
  the named fields (admin token): a value replaces the field (a whole list too), None clears
  it; with ``lock_on_put`` the fields are locked against extraction as well.
- ``delete``, or ``put`` of None: ``DELETE``, the user is forgotten.
- What a profile store cannot do raises :class:`~streams.errors.UnsupportedOperation` saying
  so: another key, a ``query`` (no vector search), ``list_namespaces`` (no index of subjects),
  a TTL or a vector ``index``, a write on another kind than users.

Writes are commands on the input topic: they return once a worker has put them there, and the
profile changes when a worker applies them, in order with the user's messages, so a ``get``
right after a ``put`` may still show the old value. Ops of one batch run in their order.

The sync methods run the async ones on a loop of their own: call them from plain threads (a
sync ``@entrypoint`` runs in one), and ``aget``/``asearch``/... inside an event loop. Needs the
``langgraph`` extra; no other client module imports it.
"""

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from langgraph.store.base import (
    BaseStore,
    GetOp,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from streams.client.http import _failure, _profile_url, _timeout, forget_profile, get_profile
from streams.errors import ProfileNotFound, Refused, UnsupportedOperation

__all__ = ["PROFILE_KEY", "ProfileItem", "ProfileStreamStore"]

#: The key of the one item in a profile namespace.
PROFILE_KEY = "profile"
_PROFILE = "profile"
_USER = "user"
#: Namespace labels that name the user kind: the seed's plural, and the kind's own name.
_USER_LABELS = ("users", _USER)
_EXAMPLE = "('users', user_id, 'profile')"
#: The worker says when a profile last changed; a body without it gets this.
_UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _Profile:
    """The profile a namespace names: its kind and subject, and the namespace items carry."""

    label: str
    subject: str

    @property
    def kind(self) -> str:
        return _USER if self.label in _USER_LABELS else self.label

    @property
    def namespace(self) -> tuple[str, ...]:
        return (self.label, self.subject, _PROFILE)


class ProfileItem(SearchItem):
    """A stored profile as a LangGraph item: ``value`` is the profile (what goes in a prompt);
    ``version``, ``schema``, ``locked`` and ``provenance`` (field to ``{message_id, at, by}``:
    the message or correction its value came from) are beside it. ``updated_at`` is when the
    profile last changed; the workers keep no creation time, so ``created_at`` is the same."""

    __slots__ = ("kind", "locked", "provenance", "schema", "version")

    kind: str
    version: int
    schema: str
    locked: tuple[str, ...]
    provenance: dict[str, dict[str, Any]]

    @classmethod
    def from_body(cls, namespace: tuple[str, ...], body: Mapping[str, Any]) -> "ProfileItem":
        """The item for a worker's ``GET /profiles/...`` answer."""
        raw = body.get("updated_at")
        at = datetime.fromisoformat(raw) if isinstance(raw, str) else _UNKNOWN_TIME
        item = cls(namespace, PROFILE_KEY, dict(body.get("profile", {})), at, at)
        item.kind = str(body.get("kind", _USER))
        item.version = int(body.get("version", 0))
        item.schema = str(body.get("schema", ""))
        item.locked = tuple(body.get("locked", ()))
        item.provenance = dict(body.get("provenance", {}))
        return item

    def dict(self) -> dict[str, Any]:
        """The item as JSON, its bookkeeping included."""
        return {
            **super().dict(),
            "kind": self.kind,
            "version": self.version,
            "schema": self.schema,
            "locked": list(self.locked),
            "provenance": self.provenance,
        }

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.dict().items() if k != "provenance"}
        return f"ProfileItem({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


class ProfileStreamStore(BaseStore):
    """A LangGraph ``BaseStore`` whose items are the profiles a profile-stream worker serves.

    Args:
        base_url: any worker's HTTP address, e.g. ``http://127.0.0.1:6066``.
        token: a read token (``PROFILE_STREAM_READ_TOKENS``), for get and search.
        admin_token: an admin token (``PROFILE_STREAM_ADMIN_TOKENS``), for put and delete;
            without one they raise :class:`~streams.errors.UnsupportedOperation`.
        lock_on_put: lock the fields a ``put`` names, so extraction no longer changes them.
        timeout_s: seconds to wait for one answer from the worker.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        admin_token: str | None = None,
        lock_on_put: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.admin_token = admin_token
        self.lock_on_put = lock_on_put
        self.timeout_s = timeout_s

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`abatch` on a loop of its own; refused inside a running event loop, which it
        would block."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.abatch(ops))
        raise UnsupportedOperation(
            "the sync store methods wait on HTTP and would block this event loop; "
            "await aget, asearch, aput or adelete here instead"
        )

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in their order; see the module docstring for what each one does.

        Raises:
            UnsupportedOperation: an op a profile store cannot do; ops before it have run.
            ProfileStreamError: the worker refused (``Refused``: 400 with why a correction does
                not fit the schema, 401/403 for a token) or cannot be reached.
        """
        return [await self._run(op) for op in ops]

    async def _run(self, op: Op) -> Result:
        match op:
            case GetOp():
                return await self._read(_profile_of(op.namespace, op.key))
            case SearchOp():
                return await self._search(op)
            case PutOp():
                await self._write(op)
                return None
            case ListNamespacesOp():
                raise UnsupportedOperation(
                    "profile-stream keeps no index of its subjects, so it cannot list "
                    f"namespaces; read a profile by its namespace, e.g. {_EXAMPLE}"
                )
        raise TypeError(f"not a store operation: {op!r}")

    async def _read(self, profile: _Profile) -> ProfileItem | None:
        try:
            body = await get_profile(
                self.base_url,
                profile.subject,
                token=self.token,
                kind=profile.kind,
                timeout_s=self.timeout_s,
                provenance=True,
            )
        except ProfileNotFound:
            return None
        return ProfileItem.from_body(profile.namespace, body)

    async def _search(self, op: SearchOp) -> list[SearchItem]:
        if op.query:
            raise UnsupportedOperation(
                "profile-stream has no vector search: a profile namespace holds one item, the "
                "profile; search without query= to read it"
            )
        item = await self._read(_profile_of_prefix(op.namespace_prefix))
        if item is None or op.offset > 0 or op.limit < 1 or not _matches(item.value, op.filter):
            return []
        return [item]

    async def _write(self, op: PutOp) -> None:
        profile = _profile_of(op.namespace, op.key)
        if profile.kind != _USER:
            raise UnsupportedOperation(
                f"{profile.kind} profiles change only through their messages: the workers take "
                f"corrections and forgets for user profiles, namespace {_EXAMPLE}"
            )
        if op.ttl is not None or isinstance(op.index, list):
            raise UnsupportedOperation(
                "profiles neither expire nor have a vector index: put without ttl or index"
            )
        if self.admin_token is None:
            raise UnsupportedOperation(
                "put and delete are operator commands and need an admin token: "
                "ProfileStreamStore(..., admin_token=...)"
            )
        if op.value is None:
            await forget_profile(
                self.base_url, profile.subject, token=self.admin_token, timeout_s=self.timeout_s
            )
        elif op.value:
            url = _profile_url(self.base_url, profile.subject)
            body = _correction(op.value, lock=self.lock_on_put)
            await _patch(url, body, token=self.admin_token, timeout_s=self.timeout_s)


def _correction(fields: Mapping[str, Any], *, lock: bool = False) -> dict[str, Any]:
    """The ``PATCH /profiles/{user_id}`` body that makes each named field hold its value.

    None or an empty list clears a field; a list replaces the field's items (extraction's
    ``set`` on a list adds to it, so the field is cleared first).
    """
    operations: list[dict[str, Any]] = []
    for field, value in fields.items():
        if value is None or value == []:
            operations.append({"field": field, "op": "unset"})
            continue
        if isinstance(value, list):
            operations.append({"field": field, "op": "unset"})
        operations.append({"field": field, "op": "set", "value": value})
    return {"operations": operations, "lock": list(fields) if lock else []}


def _profile_of(namespace: tuple[str, ...], key: str) -> _Profile:
    if len(namespace) != 3 or namespace[2] != _PROFILE:
        raise UnsupportedOperation(
            f"{namespace!r} is not a profile namespace: profile-stream stores one profile per "
            f"{_EXAMPLE} or (kind, subject, 'profile')"
        )
    if key != PROFILE_KEY:
        raise UnsupportedOperation(
            f"a profile namespace holds one item, under the key {PROFILE_KEY!r}, not {key!r}; "
            "free-form keys are not stored"
        )
    return _Profile(namespace[0], namespace[1])


def _profile_of_prefix(prefix: tuple[str, ...]) -> _Profile:
    if len(prefix) == 2 or (len(prefix) == 3 and prefix[2] == _PROFILE):
        return _Profile(prefix[0], prefix[1])
    raise UnsupportedOperation(
        f"cannot search {prefix!r}: profile-stream reads one profile at a time and keeps no "
        f"index of its subjects; search a profile namespace such as {_EXAMPLE}"
    )


def _matches(profile: Mapping[str, Any], wanted: Mapping[str, Any] | None) -> bool:
    for field, value in (wanted or {}).items():
        if isinstance(value, dict):
            raise UnsupportedOperation(
                f"filter on {field!r}: only equality is supported ({{field: value}}), not operators"
            )
        if profile.get(field) != value:
            return False
    return True


async def _patch(url: str, body: Mapping[str, Any], *, token: str, timeout_s: float) -> str:
    """Send a correction; return its command id once the worker has accepted it (202).

    Raises:
        Refused: the worker refused it (400 says which field or value does not fit).
        ServiceTimeout: no answer within ``timeout_s``.
        ServiceError: the worker cannot be reached.
    """
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        async with (
            aiohttp.ClientSession(timeout=_timeout(timeout_s)) as session,
            session.patch(url, data=orjson.dumps(body), headers=headers) as response,
        ):
            text = await response.text()
            if response.status != 202:
                raise Refused(
                    f"{url} answered {response.status}: {text[:200]}", status=response.status
                )
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _failure(url, exc, timeout_s) from exc
    return str(orjson.loads(text)["command_id"])
