"""The long-lived client an app keeps: :class:`AsyncProfileStreamClient` (its sync twin,
``ProfileStreamClient``, is :mod:`streams.client.sync`).

Configured once (:class:`~streams.client.config.ClientConfig`: arguments over the
``PROFILE_STREAM_*`` variables), it holds one HTTP session, whose connections are pooled and
reused (one TLS handshake per connection, not per read), and one idempotent Kafka producer,
started on the first publish and kept until it closes. Answers are typed: the pydantic models
of ``schemas`` (:class:`~schemas.ProfileAnswer`, :class:`~schemas.HistoryAnswer`,
:class:`~schemas.ProfileEvent`)::

    async with AsyncProfileStreamClient(url="http://127.0.0.1:6066", token="demo-read") as ps:
        turn = await ps.publish_turn("alice", "I'm Alice from California", "Hi Alice!")
        profile = await ps.refresh("alice")       # read-your-writes: the turn is in it
        print(profile.profile["name"], profile.freshness)
"""

from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import aiohttp
from pydantic import BaseModel, ValidationError

from schemas import ChatMessage, HistoryAnswer, ProfileAnswer
from streams.client.config import ClientConfig
from streams.client.events import ProfileEvents
from streams.client.messages import Turn, records_for, records_of, turn_messages
from streams.client.options import (
    CorrectionOptions,
    ReadOptions,
    SubscribeOptions,
    TurnOptions,
)
from streams.client.producer import Producer
from streams.client.transport import new_session
from streams.client.views import Worker, correction_body
from streams.errors import ConfigError, ServiceError

__all__ = ["AsyncProfileStreamClient"]

_M = TypeVar("_M", bound=BaseModel)


def typed(model: type[_M], data: Mapping[str, Any]) -> _M:
    """``data`` as ``model``; keys this client does not know (a newer worker's) are left out.

    Raises:
        ServiceError: the answer does not have the model's shape.
    """
    known = {f.alias or name for name, f in model.model_fields.items()} | set(model.model_fields)
    try:
        return model.model_validate({k: v for k, v in data.items() if k in known})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(map(str, first["loc"]))
        raise ServiceError(
            f"the worker's answer is not a {model.__name__}: {where}: {first['msg']}"
        ) from None


class AsyncProfileStreamClient:
    """profile-stream for an asyncio app: publish chat turns, read profiles (now, as they
    were, or once a message is reflected), follow profile events, and, with an admin token,
    correct, flush, revert and forget.

    ``AsyncProfileStreamClient(url=..., token=..., kafka=...)`` takes any
    :class:`ClientConfig` field, over the ``PROFILE_STREAM_*`` variables;
    ``AsyncProfileStreamClient(config=ClientConfig(...))`` uses that configuration alone. Use
    it as ``async with`` (or call :meth:`aclose`): one HTTP session and one producer serve
    every call until then. Every error is a :class:`~streams.errors.ProfileStreamError`.
    """

    def __init__(self, config: ClientConfig | None = None, **fields: Any) -> None:
        if config is None:
            config = ClientConfig.from_env(**fields)
        elif fields:
            config = config.with_(**fields)
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._producer = Producer(config.kafka)

    @property
    def producers_started(self) -> int:
        """Kafka producers started so far: one for a lifetime without send failures."""
        return self._producer.starts

    def _worker(self, *, admin: bool = False) -> Worker:
        if self._session is None or self._session.closed:
            self._session = new_session(self.config.ssl_context())
        token = self.config.token
        if admin:
            token = self.config.admin_token
            if not token:
                raise ConfigError(
                    "no admin token: pass admin_token=, or set PROFILE_STREAM_ADMIN_TOKEN to "
                    "one of the workers' PROFILE_STREAM_ADMIN_TOKENS"
                )
        c = self.config
        return Worker(self._session, c.url, token, c.timeout_s, c.attempts)

    async def aclose(self) -> None:
        """Close the HTTP session and stop the producer (after what it has in flight)."""
        session, self._session = self._session, None
        try:
            await self._producer.close()
        finally:
            if session is not None:
                await session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def publish(
        self,
        messages: Iterable[ChatMessage] | AsyncIterable[ChatMessage],
        *,
        on_sent: Callable[[int], None] | None = None,
    ) -> int:
        """Publish chat messages (keyed by user id, in order) to the input topic; return how
        many Kafka confirmed. Raises ``BrokerUnavailable``."""
        topic = self.config.input_topic
        return await self._producer.send(records_of(messages), topic=topic, on_sent=on_sent)

    async def publish_turn(
        self,
        user_id: str,
        user_message: str,
        assistant_message: str | None = None,
        **options: Unpack[TurnOptions],
    ) -> Turn:
        """Publish one chat turn, in one request; return its message ids (see
        :func:`streams.client.messages.publish_turn`: an empty assistant text is not sent;
        :class:`~streams.client.options.TurnOptions`: ``turn_id``, ``end_of_conversation``...).
        Raises ``InvalidRequest`` (nothing sent) or ``BrokerUnavailable``."""
        messages = turn_messages(user_id, user_message, assistant_message, **options)
        await self._producer.send_together(records_for(messages), topic=self.config.input_topic)
        return Turn.of(messages)

    def subscribe(self, **options: Unpack[SubscribeOptions]) -> ProfileEvents:
        """Profile events as an async iterator (``async with client.subscribe(...) as
        events: async for event in events``), users' by default; see
        :class:`~streams.client.options.SubscribeOptions` and
        :class:`~streams.client.events.ProfileEvents`."""
        kafka, topic = self.config.kafka, self.config.events_topic
        return ProfileEvents(bootstrap=kafka, topic=topic, **options)

    async def get(self, user_id: str, **options: Unpack[ReadOptions]) -> ProfileAnswer:
        """A profile: now (``freshness`` says what it reflects), as it was at ``version`` or
        ``as_of``, or once it reflects message ``wait_for`` (up to ``wait_s``, at most 30;
        nothing is flushed for it); see :class:`~streams.client.options.ReadOptions`, and
        :func:`streams.client.http.get_profile` for the errors (``ProfileNotFresh`` when
        ``wait_for`` times out)."""
        return typed(ProfileAnswer, await self._worker().profile(user_id, **options))

    async def refresh(self, user_id: str, *, wait_s: float = 30.0) -> ProfileAnswer:
        """Extract the user's buffered messages now and return the profile once applied
        (read token; at most one model call, none with nothing buffered). Raises
        ``ProfileNotFresh`` after ``wait_s`` (at most 60)."""
        return typed(ProfileAnswer, await self._worker().refresh(user_id, wait_s=wait_s))

    async def history(self, user_id: str, *, field: str | None = None) -> HistoryAnswer:
        """The user's field revisions, oldest first (only ``field``'s when given)."""
        return typed(HistoryAnswer, await self._worker().history(user_id, field=field))

    async def prompt(self, user_id: str) -> str:
        """The user's profile as a ``<User Profile>`` block for a system prompt."""
        return await self._worker().prompt(user_id)

    async def correct(self, user_id: str, **options: Unpack[CorrectionOptions]) -> str:
        """Correct a profile as an operator (admin token); return the command id. See
        :class:`~streams.client.options.CorrectionOptions` and
        :func:`streams.client.http.correct_profile`."""
        body = correction_body(**options)
        return await self._worker(admin=True).command("PATCH", user_id, body=body)

    async def flush(self, user_id: str) -> str:
        """Ask for the user's buffered messages to be extracted now (admin token); return the
        command id without waiting (:meth:`refresh` waits, with a read token)."""
        return await self._worker(admin=True).command("POST", user_id, suffix="/flush")

    async def forget(self, user_id: str) -> str:
        """Forget a user (admin token); return the command id."""
        return await self._worker(admin=True).command("DELETE", user_id)

    async def revert(
        self, user_id: str, *, version: int, fields: Sequence[str] = (), lock: Sequence[str] = ()
    ) -> str:
        """Give ``fields`` (all when empty) their values at ``version`` back (admin token);
        return the command id."""
        body = {"version": version, "fields": list(fields), "lock": list(lock)}
        return await self._worker(admin=True).command("POST", user_id, suffix="/revert", body=body)
