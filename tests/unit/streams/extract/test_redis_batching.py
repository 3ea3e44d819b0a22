"""Commands of concurrent callers share one round trip, each caller getting its own answer.

Against a stand-in client that records its pipelines; the cache over a live Redis is covered by
``tests/integration/test_cache_and_limits.py``.
"""

import asyncio
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError, ResponseError

from streams.extract.redis_batching import CommandBatcher


class _Pipeline:
    def __init__(self, server: "_Server") -> None:
        self._server, self._commands = server, cast(list[tuple[Any, ...]], [])

    def execute_command(self, *args: Any) -> "_Pipeline":
        self._commands.append(args)
        return self

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        assert not raise_on_error  # an error is its own command's
        self._server.round_trips.append(self._commands)
        await asyncio.sleep(0)  # on the wire: callers arriving now wait for the next one
        if self._server.down:
            raise ConnectionError("connection refused")
        return [self._server.answer(c) for c in self._commands]


class _Server:
    """Answers ``GET k`` with ``k`` upper-cased, ``BAD`` with a command error."""

    def __init__(self) -> None:
        self.round_trips: list[list[tuple[Any, ...]]] = []
        self.down = False

    def pipeline(self, transaction: bool = True) -> _Pipeline:
        assert not transaction  # no MULTI: one command's error must not void the others
        return _Pipeline(self)

    def answer(self, command: tuple[Any, ...]) -> Any:
        if command[0] == "BAD":
            return ResponseError("ERR unknown command")
        return command[1].upper()


def _batcher(server: _Server, **kwargs: Any) -> CommandBatcher:
    return CommandBatcher(cast(aioredis.Redis, server), **kwargs)


async def test_commands_asked_together_go_in_one_round_trip_each_with_its_answer() -> None:
    server = _Server()
    batcher = _batcher(server)
    answers = await asyncio.gather(*(batcher.execute("GET", f"k{i}") for i in range(5)))
    assert answers == [f"K{i}" for i in range(5)]
    assert len(server.round_trips) == 1


async def test_commands_asked_during_a_round_trip_go_in_the_next_one() -> None:
    server = _Server()
    batcher = _batcher(server)
    first = asyncio.create_task(batcher.execute("GET", "a"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first round trip is out
    later = await asyncio.gather(batcher.execute("GET", "b"), batcher.execute("GET", "c"))
    assert (await first, later) == ("A", ["B", "C"])
    assert [len(trip) for trip in server.round_trips] == [1, 2]


async def test_a_command_error_is_its_own_callers_only() -> None:
    batcher = _batcher(_Server())
    good, bad = await asyncio.gather(
        batcher.execute("GET", "a"), batcher.execute("BAD"), return_exceptions=True
    )
    assert good == "A"
    assert isinstance(bad, ResponseError)


async def test_a_failed_round_trip_fails_every_command_in_it_and_the_next_one_goes_out() -> None:
    server = _Server()
    batcher = _batcher(server)
    server.down = True
    failed = await asyncio.gather(
        batcher.execute("GET", "a"), batcher.execute("GET", "b"), return_exceptions=True
    )
    assert all(isinstance(f, ConnectionError) for f in failed)
    server.down = False
    assert await batcher.execute("GET", "c") == "C"


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    server = _Server()
    batcher = _batcher(server)
    gone = asyncio.create_task(batcher.execute("GET", "a"))
    kept = asyncio.create_task(batcher.execute("GET", "b"))
    await asyncio.sleep(0)
    gone.cancel()
    assert await kept == "B"
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_a_batch_holds_at_most_max_batch_commands() -> None:
    server = _Server()
    batcher = _batcher(server, max_batch=2)
    answers = await asyncio.gather(*(batcher.execute("GET", f"k{i}") for i in range(5)))
    assert answers == [f"K{i}" for i in range(5)]
    assert [len(trip) for trip in server.round_trips] == [2, 2, 1]
