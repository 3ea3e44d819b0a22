"""What the integration tests, the bench and the demo share to run real workers: unique topic
and group names, free ports, ``profile-stream worker`` subprocesses with their logs and
readiness waits, and a few Kafka look-ups. Imported from the repository root (``tests.support``);
it is not part of the installed package."""

from tests.support.kafka import (
    BOOTSTRAP,
    committed,
    delete_topics,
    end_offsets,
    partitions,
    rewind,
)
from tests.support.names import Names, clean_environ, free_port
from tests.support.processes import (
    PROFILE_STREAM,
    NotReady,
    Process,
    ProcessExited,
    WorkerProcess,
    wait_ready,
)

__all__ = [
    "BOOTSTRAP",
    "PROFILE_STREAM",
    "Names",
    "NotReady",
    "Process",
    "ProcessExited",
    "WorkerProcess",
    "clean_environ",
    "committed",
    "delete_topics",
    "end_offsets",
    "free_port",
    "partitions",
    "rewind",
    "wait_ready",
]
