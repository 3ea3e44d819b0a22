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
  the named fields (admin token), through :func:`~streams.client.correct_profile`: a value
  replaces the field (a list field's whole list, as ``set`` does for every operator
  correction), None clears it; with ``lock_on_put`` the fields are locked against extraction
  as well.
- ``delete``, or ``put`` of None: ``DELETE``, the user is forgotten.
- What a profile store cannot do raises :class:`~streams.errors.UnsupportedOperation` saying
  so: another key, a ``query`` (no vector search), ``list_namespaces`` (no index of subjects),
  a TTL or a vector ``index``, a write on another kind than users.

Writes are commands on the input topic: they return once a worker has put them there, and the
profile changes when a worker applies them, in order with the user's messages, so a ``get``
right after a ``put`` may still show the old value. Ops of one batch run in their order.

Reads are as fresh as the workers' buffers: a user's messages are extracted after 60 s of
quiet by default (``PROFILE_STREAM_FLUSH_IDLE_S``). Each item carries ``freshness`` (the
messages still buffered, the newest message reflected); :meth:`ProfileStreamStore.arefresh`
extracts the buffered messages now (one model call) and returns the item that reflects them.
:meth:`ProfileStreamStore.aget_prompt` gives the ``<User Profile>`` block the workers render.

User ids with a dot (every email address): LangGraph refuses namespace labels that contain a
``.``, so give the subject through :func:`subject_label` (``ProfileStreamStore.namespace``
does): ``.`` is written ``%2E`` and ``%`` ``%25``, which the store reads back to the id; ``@``,
``/`` and the rest pass as they are. A label with no ``%`` is the id itself.

LangMem's store manager writes ``{"kind": "UserProfile", "content": {...}}`` items: with
``value_shape="langmem"`` the store's items have that shape (``kind`` is the schema's name),
and ``put`` takes it, so code written against LangMem's items reads these unchanged.

The sync methods run the async ones on a loop of their own: call them from plain threads (a
sync ``@entrypoint`` runs in one), and ``aget``/``asearch``/... inside an event loop. Needs the
``langgraph`` extra; no other client module imports it.
"""

import asyncio
import re
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

try:
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
except ImportError as missing:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "ProfileStreamStore needs LangGraph: install the client with its langgraph extra, "
        "pip install 'profile-stream-client[langgraph]' (in this repository: "
        "pip install -e '.[langgraph]')"
    ) from missing

from streams.client.http import correct_profile, forget_profile, get_profile, get_prompt
from streams.client.refresh import refresh_profile
from streams.errors import ProfileNotFound, UnsupportedOperation

__all__ = ["PROFILE_KEY", "ProfileItem", "ProfileStreamStore", "subject_label", "subject_of"]

#: The key of the one item in a profile namespace.
PROFILE_KEY = "profile"
_PROFILE = "profile"
_USER = "user"
#: Namespace labels that name the user kind: the seed's plural, and the kind's own name.
_USER_LABELS = ("users", _USER)
_EXAMPLE = "('users', user_id, 'profile')"
#: The worker says when a profile last changed; a body without it gets this.
_UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
#: What an item's value is: the profile, or LangMem's ``{"kind": ..., "content": profile}``.
ValueShape = Literal["profile", "langmem"]
_T = TypeVar("_T")
_ESCAPED = re.compile("%(2[Ee]|25)")


def subject_label(subject: str) -> str:
    """``subject`` (a user id) as a namespace label LangGraph accepts: ``.`` as ``%2E`` and
    ``%`` as ``%25``; :func:`subject_of` reads it back."""
    return subject.replace("%", "%25").replace(".", "%2E")


def subject_of(label: str) -> str:
    """The subject a namespace label names (the inverse of :func:`subject_label`)."""
    return _ESCAPED.sub(lambda m: "." if m.group(1) != "25" else "%", label)


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
        return (self.label, subject_label(self.subject), _PROFILE)


class ProfileItem(SearchItem):
    """A stored profile as a LangGraph item: ``value`` is the profile (what goes in a prompt);
    ``version``, ``schema``, ``locked`` and ``provenance`` (field to ``{message_id, at, by}``:
    the message or correction its value came from) are beside it. ``updated_at`` is when the
    profile last changed; the workers keep no creation time, so ``created_at`` is the same."""

    __slots__ = ("freshness", "kind", "locked", "provenance", "schema", "version")

    kind: str
    version: int
    schema: str
    locked: tuple[str, ...]
    provenance: dict[str, dict[str, Any]]
    #: ``{buffered_messages, last_message_id, last_message_at}``: how far the profile is
    #: behind the user's messages (see :meth:`ProfileStreamStore.arefresh`).
    freshness: dict[str, Any]

    @classmethod
    def from_body(
        cls, namespace: tuple[str, ...], body: Mapping[str, Any], shape: ValueShape = "profile"
    ) -> "ProfileItem":
        """The item for a worker's ``GET /profiles/...`` answer; ``shape`` ``langmem`` wraps
        the profile as LangMem's manager does: ``{"kind": <schema name>, "content": ...}``."""
        raw = body.get("updated_at")
        at = datetime.fromisoformat(raw) if isinstance(raw, str) else _UNKNOWN_TIME
        schema = str(body.get("schema", ""))
        value = dict(body.get("profile", {}))
        if shape == "langmem":
            value = {"kind": schema.partition("/")[0], "content": value}
        item = cls(namespace, PROFILE_KEY, value, at, at)
        item.kind = str(body.get("kind", _USER))
        item.version = int(body.get("version", 0))
        item.schema = schema
        item.locked = tuple(body.get("locked", ()))
        item.provenance = dict(body.get("provenance", {}))
        item.freshness = dict(body.get("freshness") or {})
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
            "freshness": self.freshness,
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
        value_shape: ``profile`` (an item's value is the profile) or ``langmem`` (LangMem's
            ``{"kind": ..., "content": profile}``; ``put`` takes that shape too).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        admin_token: str | None = None,
        lock_on_put: bool = False,
        timeout_s: float = 10.0,
        value_shape: ValueShape = "profile",
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.admin_token = admin_token
        self.lock_on_put = lock_on_put
        self.timeout_s = timeout_s
        self.value_shape = value_shape

    @staticmethod
    def namespace(user_id: str, label: str = "users") -> tuple[str, str, str]:
        """The namespace of ``user_id``'s profile (or, with ``label``, another kind's
        subject), the id written as LangGraph accepts it (:func:`subject_label`)."""
        return (label, subject_label(user_id), _PROFILE)

    async def arefresh(self, namespace: tuple[str, ...]) -> "ProfileItem | None":
        """The user's profile once every message of the user published so far is extracted
        (``POST /profiles/{user_id}/refresh``: the worker flushes the user's buffer now, at
        most one model call; a read token suffices); None when there is no profile."""
        profile = _profile_of(namespace, PROFILE_KEY)
        body = await refresh_profile(
            self.base_url, profile.subject, token=self.token, timeout_s=self.timeout_s
        )
        return (
            None
            if body is None
            else ProfileItem.from_body(profile.namespace, body, self.value_shape)
        )

    def refresh(self, namespace: tuple[str, ...]) -> "ProfileItem | None":
        """:meth:`arefresh` on a loop of its own (from threads, not inside an event loop)."""
        return self._sync(self.arefresh(namespace))

    async def aget_prompt(self, namespace: tuple[str, ...]) -> str:
        """The profile as the ``<User Profile>`` block the workers render for a system prompt
        (``GET /profiles/{user_id}/prompt``); ``""`` when there is no profile."""
        profile = _profile_of(namespace, PROFILE_KEY)
        if profile.kind != _USER:
            raise UnsupportedOperation("the workers render prompts of user profiles only")
        try:
            return await get_prompt(
                self.base_url, profile.subject, token=self.token, timeout_s=self.timeout_s
            )
        except ProfileNotFound:
            return ""

    def get_prompt(self, namespace: tuple[str, ...]) -> str:
        """:meth:`aget_prompt` on a loop of its own (from threads, not inside an event loop)."""
        return self._sync(self.aget_prompt(namespace))

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`abatch` on a loop of its own; refused inside a running event loop, which it
        would block."""
        return self._sync(self.abatch(ops))

    @staticmethod
    def _sync(call: Coroutine[Any, Any, _T]) -> _T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(call)
        call.close()
        raise UnsupportedOperation(
            "the sync store methods wait on HTTP and would block this event loop; "
            "await aget, asearch, aput, adelete, arefresh or aget_prompt here instead"
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
        return ProfileItem.from_body(profile.namespace, body, self.value_shape)

    async def _search(self, op: SearchOp) -> list[SearchItem]:
        if op.query:
            raise UnsupportedOperation(
                "profile-stream has no vector search: a profile namespace holds one item, the "
                "profile; search without query= to read it"
            )
        item = await self._read(_profile_of_prefix(op.namespace_prefix))
        if item is None or op.offset > 0 or op.limit < 1:
            return []
        fields = item.value["content"] if self.value_shape == "langmem" else item.value
        return [item] if _matches(fields, op.filter) else []

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
            return
        fields = _fields_of(op.value, self.value_shape)
        if not fields:
            raise UnsupportedOperation(
                "a put names the fields to correct ({field: value}); an empty value changes "
                "nothing, and None forgets the user"
            )
        await correct_profile(
            self.base_url,
            profile.subject,
            token=self.admin_token,
            values=fields,
            lock=list(fields) if self.lock_on_put else [],
            timeout_s=self.timeout_s,
        )


def _fields_of(value: Mapping[str, Any], shape: ValueShape) -> Mapping[str, Any]:
    """The fields a put names: the value, or in LangMem's shape its ``content``."""
    if shape != "langmem":
        return value
    content = value.get("content")
    if not isinstance(content, Mapping):
        raise UnsupportedOperation(
            'a langmem-shaped put takes {"kind": ..., "content": {field: value, ...}}'
        )
    return content


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
    return _Profile(namespace[0], subject_of(namespace[1]))


def _profile_of_prefix(prefix: tuple[str, ...]) -> _Profile:
    if len(prefix) == 2 or (len(prefix) == 3 and prefix[2] == _PROFILE):
        return _Profile(prefix[0], subject_of(prefix[1]))
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
