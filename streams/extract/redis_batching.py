"""Redis commands of concurrent callers sent together, one round trip for all of a moment's.

The result cache asks Redis twice per model call (the lookup before it, the store after). One
command per round trip cost a busy worker a connection taken from the pool and checked, a
socket write and a read for each, and as many connections as batches in flight (bench/README.md,
"Where the CPU goes"). Here the commands queued while a round trip is out go together in the
next one: a pipeline without ``MULTI`` on one connection, each command's answer or error handed
to its own caller. Alone, a command still leaves at once (the next turn of the event loop).
"""

import asyncio
from typing import Any

import redis.asyncio as aioredis

__all__ = ["CommandBatcher"]

_Queued = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class CommandBatcher:
    """Sends the commands given to :meth:`execute` in pipelines, one at a time.

    Args:
        redis: the client (its socket timeouts bound each round trip).
        max_batch: the most commands in one pipeline.
    """

    def __init__(self, redis: aioredis.Redis, *, max_batch: int = 512) -> None:
        self._redis, self._max_batch = redis, max_batch
        self._queue: list[_Queued] = []
        self._sender: asyncio.Task[None] | None = None

    async def execute(self, *args: Any) -> Any:
        """Run one command (``"HGET", key, field``) with the others queued now; its answer.

        Raises:
            RedisError: the command's own error, or the round trip's (every command in it
                gets the same).
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((args, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="redis-batch")
        return await future

    async def aclose(self) -> None:
        """Let the round trips already asked for finish."""
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)

    async def _send(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            try:
                answers = await self._round_trip(batch)
            except asyncio.CancelledError:  # the loop is closing: nobody is left unanswered
                for _, future in batch + self._queue:
                    future.cancel()
                self._queue.clear()
                raise
            for (_, future), answer in zip(batch, answers, strict=True):
                if future.done():  # its caller was cancelled meanwhile
                    continue
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

    async def _round_trip(self, batch: list[_Queued]) -> list[Any]:
        """The answers of ``batch`` in its order; an error of the round trip is each one's."""
        pipe = self._redis.pipeline(transaction=False)
        for args, _ in batch:
            pipe.execute_command(*args)
        try:
            return list(await pipe.execute(raise_on_error=False))
        except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
            return [exc] * len(batch)
