"""Fencing: which partitions this worker owns now, so a batch never writes for a lost one.

Kafka moves a partition to another worker on a rebalance; the worker that loses it must write
and emit nothing more for it (DESIGN.md, invariant 1), or the new owner and the old one both
publish version n of a user, with different contents.

Each job carries a :class:`Token` taken when its event came out of the stream: its partition
and the partition's *epoch*, a per-worker counter bumped on every revoke and every assign. The
scheduler makes the running batch's token current in the batch's task (:func:`hold`), and the
publisher calls :func:`check_owned` right before each table write, each changelog wait and each
emit: a token whose partition was revoked since, or assigned again (a new ownership), raises
:class:`Fenced`. The batch stops there, unacknowledged, and the new owner redoes it.

Pure: no Faust. The worker feeds :meth:`Ownership.revoke` and :meth:`Ownership.assign` from
Faust's rebalance signals (through the scheduler, which also drops the partition's jobs).
"""

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["Fenced", "Ownership", "Token", "TopicPartition", "check_owned", "hold"]

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Token:
    """A partition and the epoch of this worker's ownership of it when the job was taken."""

    tp: TopicPartition
    epoch: int


class Fenced(BaseException):  # noqa: N818 - a signal like CancelledError, not an error
    """The batch's partition was revoked (or assigned anew) since its events were read.

    A ``BaseException``, like ``asyncio.CancelledError``: no ``except Exception`` on the way
    (an error policy, a dead-letter path) may absorb it; only the scheduler handles it, by
    dropping the batch without acknowledging it.
    """


class Ownership:
    """The partitions this worker owns, each with its epoch.

    A partition never seen is owned at epoch 0 (a worker reads only what it was assigned);
    after :meth:`revoke` it is not owned until the next :meth:`assign`, and both bump its
    epoch, so a token from an earlier ownership never validates again.
    """

    def __init__(self) -> None:
        self._epoch: dict[TopicPartition, int] = {}
        self._revoked: set[TopicPartition] = set()
        self._counter = 0

    def token(self, tp: TopicPartition) -> Token:
        """The token of a job read from ``tp`` now."""
        return Token(tp, self._epoch.get(tp, 0))

    def owns(self, token: Token | None) -> bool:
        """Whether ``token``'s ownership still holds (a job without a token is never fenced)."""
        if token is None:
            return True
        return token.tp not in self._revoked and self._epoch.get(token.tp, 0) == token.epoch

    def revoke(self, tps: Iterable[TopicPartition]) -> None:
        """The partitions are leaving: every token taken before is stale from now on."""
        self._counter += 1
        for tp in tps:
            self._epoch[tp] = self._counter
            self._revoked.add(tp)

    def assign(self, tps: Iterable[TopicPartition]) -> None:
        """The partitions are (again) this worker's, as a new ownership."""
        self._counter += 1
        for tp in tps:
            self._epoch[tp] = self._counter
            self._revoked.discard(tp)


@dataclass(frozen=True)
class _Lease:
    ownership: Ownership
    token: Token | None


_current: ContextVar[_Lease | None] = ContextVar("profile_stream_lease", default=None)


def hold(ownership: Ownership, token: Token | None) -> None:
    """Make ``token`` the ownership this task writes under (each batch runs in its own task)."""
    _current.set(_Lease(ownership, token))


def check_owned(step: str) -> None:
    """Raise :class:`Fenced` if this task's batch lost its partition; call right before
    ``step`` (a store, the changelog wait, an emit). Outside a batch (no lease) it passes."""
    lease = _current.get()
    if lease is not None and not lease.ownership.owns(lease.token):
        raise Fenced(f"partition {lease.token.tp if lease.token else '?'} lost before {step}")
