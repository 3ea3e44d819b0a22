"""The sync client, for Flask, Django, scripts and notebooks: :class:`ProfileStreamClient`.

It is :class:`~streams.client.client.AsyncProfileStreamClient` run on an event loop of its
own, in a daemon thread started with the client's first call: one implementation of every
call, its errors and retries, rather than two that drift. A loop per call
(``asyncio.run``) would not do: the HTTP session and the Kafka producer live on a loop, and
keeping them across calls is the point of a client. Calls from several threads are served in
turn by the one loop; calling from inside a running event loop works but blocks that loop
(use the async client there).
"""

import asyncio
import threading
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sequence,
)
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

from schemas import ChatMessage, HistoryAnswer, ProfileAnswer, ProfileEvent
from streams.client.client import AsyncProfileStreamClient
from streams.client.config import ClientConfig
from streams.client.events import ProfileEvents
from streams.client.messages import Turn
from streams.client.options import (
    CorrectionOptions,
    ReadOptions,
    SubscribeOptions,
    TurnOptions,
)

__all__ = ["ProfileStreamClient", "SyncProfileEvents"]

_T = TypeVar("_T")


class _LoopThread:
    """An event loop running in a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="profile-stream-client", daemon=True
                )
                self._thread.start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    @property
    def started(self) -> bool:
        return self._loop is not None

    def stop(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()


class SyncProfileEvents:
    """Profile events as a plain iterator (``with client.subscribe(...) as events: for event
    in events``); see :class:`~streams.client.events.ProfileEvents`."""

    def __init__(self, events: ProfileEvents, run: Callable[[Any], Any]) -> None:
        self._events, self._run = events, run
        self._iterator: AsyncIterator[ProfileEvent] = events.__aiter__()

    def __iter__(self) -> Iterator[ProfileEvent]:
        return self

    def __next__(self) -> ProfileEvent:
        try:
            event: ProfileEvent = self._run(self._iterator.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None
        return event

    def close(self, *, commit_last: bool = True) -> None:
        """Commit what was received (the last event too, unless told not to) and stop."""
        self._run(self._events.close(commit_last=commit_last))

    def __enter__(self) -> Self:
        self._run(self._events.start())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(commit_last=kind is None)


class ProfileStreamClient:
    """profile-stream for sync code: the calls of :class:`AsyncProfileStreamClient`, same
    names, arguments, results and errors, without ``await``.

    ``ProfileStreamClient(url=..., token=..., kafka=...)`` takes any :class:`ClientConfig`
    field over the ``PROFILE_STREAM_*`` variables. Use it as ``with`` (or call
    :meth:`close`): one HTTP session and one producer serve every call until then.
    """

    def __init__(self, config: ClientConfig | None = None, **fields: Any) -> None:
        self._client = AsyncProfileStreamClient(config, **fields)
        self.config = self._client.config
        self._loop = _LoopThread()

    @property
    def producers_started(self) -> int:
        """Kafka producers started so far: one for a lifetime without send failures."""
        return self._client.producers_started

    def close(self) -> None:
        """Close the HTTP session, stop the producer and the client's loop thread."""
        if not self._loop.started:
            return  # never used: nothing was opened
        try:
            self._loop.run(self._client.aclose())
        finally:
            self._loop.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def publish(
        self, messages: Iterable[ChatMessage], *, on_sent: Callable[[int], None] | None = None
    ) -> int:
        """See :meth:`AsyncProfileStreamClient.publish`."""
        return self._loop.run(self._client.publish(list(messages), on_sent=on_sent))

    def publish_turn(
        self,
        user_id: str,
        user_message: str,
        assistant_message: str | None = None,
        **options: Unpack[TurnOptions],
    ) -> Turn:
        """See :meth:`AsyncProfileStreamClient.publish_turn`."""
        call = self._client.publish_turn(user_id, user_message, assistant_message, **options)
        return self._loop.run(call)

    def subscribe(self, **options: Unpack[SubscribeOptions]) -> SyncProfileEvents:
        """See :meth:`AsyncProfileStreamClient.subscribe`."""
        return SyncProfileEvents(self._client.subscribe(**options), self._loop.run)

    def get(self, user_id: str, **options: Unpack[ReadOptions]) -> ProfileAnswer:
        """See :meth:`AsyncProfileStreamClient.get`."""
        return self._loop.run(self._client.get(user_id, **options))

    def refresh(self, user_id: str, *, wait_s: float = 30.0) -> ProfileAnswer:
        """See :meth:`AsyncProfileStreamClient.refresh`."""
        return self._loop.run(self._client.refresh(user_id, wait_s=wait_s))

    def history(self, user_id: str, *, field: str | None = None) -> HistoryAnswer:
        """See :meth:`AsyncProfileStreamClient.history`."""
        return self._loop.run(self._client.history(user_id, field=field))

    def prompt(self, user_id: str) -> str:
        """See :meth:`AsyncProfileStreamClient.prompt`."""
        return self._loop.run(self._client.prompt(user_id))

    def correct(self, user_id: str, **options: Unpack[CorrectionOptions]) -> str:
        """See :meth:`AsyncProfileStreamClient.correct`."""
        return self._loop.run(self._client.correct(user_id, **options))

    def flush(self, user_id: str) -> str:
        """See :meth:`AsyncProfileStreamClient.flush`."""
        return self._loop.run(self._client.flush(user_id))

    def forget(self, user_id: str) -> str:
        """See :meth:`AsyncProfileStreamClient.forget`."""
        return self._loop.run(self._client.forget(user_id))

    def revert(
        self, user_id: str, *, version: int, fields: Sequence[str] = (), lock: Sequence[str] = ()
    ) -> str:
        """See :meth:`AsyncProfileStreamClient.revert`."""
        call = self._client.revert(user_id, version=version, fields=fields, lock=lock)
        return self._loop.run(call)
