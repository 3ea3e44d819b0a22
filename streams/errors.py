"""Every error profile-stream raises, under one root, each saying whether a retry may help."""

from typing import ClassVar

__all__ = [
    "AnswerCutOff",
    "BrokerUnavailable",
    "CachePurgeFailed",
    "Refused",
    "TopicMissing",
    "UnsupportedOperation",
    "WorkerUnreachable",
    "ConfigError",
    "ExtractionFailed",
    "HistoryUnavailable",
    "InvalidEvent",
    "InvalidRequest",
    "InvalidModelOutput",
    "ModelUnavailable",
    "ProfileNotFound",
    "ProfileNotFresh",
    "ProfileStreamError",
    "SendRejected",
    "ServiceError",
    "ServiceTimeout",
]


class ProfileStreamError(Exception):
    """Root of profile-stream's errors."""

    retriable: ClassVar[bool] = False


class ConfigError(ProfileStreamError, ValueError):
    """A setting is missing, malformed or contradicts another; the message names the variable.

    Operator action: fix the named environment variable and start the worker again.
    """


class InvalidEvent(ProfileStreamError, ValueError):
    """An input event cannot be used as it is; it goes to the dead-letter topic with the reason."""

    def __init__(self, code: str, reason: str, *, user_id: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.user_id = user_id


class ModelUnavailable(ProfileStreamError):
    """The model endpoint failed in a way that may pass: 429, 5xx, a timeout, a dropped link."""

    retriable: ClassVar[bool] = True

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class InvalidModelOutput(ProfileStreamError):
    """The model answered, but not with a patch (not JSON, wrong shape); asking again may help."""

    retriable: ClassVar[bool] = True


class AnswerCutOff(InvalidModelOutput):
    """The answer was cut at the output-token bound before any operation was complete (a model
    repeating itself); asked again once, with repetition penalised."""


class ExtractionFailed(ProfileStreamError):
    """Extraction gave up (retry budget spent, refusal, a 4xx); the messages are dead-lettered.

    ``cause`` is a fixed word for logs and metrics (``refused``, ``endpoint_refused``,
    ``cut_off``, ``invalid_output``, ``unavailable``, ``other``); the reason says the rest.
    Operator action: read the reason, fix the model settings, then re-publish the dead letters
    with ``profile-stream dlq``.
    """

    def __init__(self, reason: str, *, attempts: int = 1, cause: str = "other") -> None:
        super().__init__(reason)
        self.attempts = attempts
        self.cause = cause


class ProfileNotFound(ProfileStreamError, LookupError):
    """No profile is stored for that user (never seen, or forgotten)."""


class HistoryUnavailable(ProfileStreamError, LookupError):
    """A profile's past that its kept revisions no longer hold (the per-field bound dropped
    them, or the record kept none then); the message says which and why.

    Operator action: read a later version, or raise PROFILE_STREAM_REVISIONS_PER_FIELD to keep
    more from now on (what was dropped does not come back).
    """


class InvalidRequest(ProfileStreamError, ValueError):
    """A client call refused before anything is sent (nothing to correct, an operation that is
    not a patch operation); the message says what to give instead."""


class ServiceError(ProfileStreamError):
    """A worker's HTTP view refused or failed; the message carries its status and answer."""

    retriable: ClassVar[bool] = True


class WorkerUnreachable(ServiceError):
    """No worker answered at the URL: nothing listening, an unknown host, no connection in
    time, or the connection dropped; the message names the URL."""


class ServiceTimeout(ServiceError):
    """A worker accepted the connection but did not answer in time; the message names it."""


class ProfileNotFresh(ServiceTimeout):
    """A read-your-writes read (``wait_for`` a message, or a refresh) timed out: the worker's
    profile does not reflect the message yet (504). ``message_id`` is the message waited for
    (None for a refresh), ``timeout_s`` how long the worker waited; asking again, with a longer
    timeout or with a refresh, may succeed."""

    def __init__(self, message: str, *, message_id: str | None, timeout_s: float) -> None:
        super().__init__(message)
        self.message_id = message_id
        self.timeout_s = timeout_s


class Refused(ServiceError):
    """A worker answered with an error status; ``status`` is the HTTP status."""

    retriable: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class BrokerUnavailable(ProfileStreamError):
    """Kafka did not answer, or failed a send; the message names the bootstrap servers.

    Operator action: start the broker (`make up` locally) or fix PROFILE_STREAM_KAFKA_BOOTSTRAP.
    """

    retriable: ClassVar[bool] = True


class SendRejected(ProfileStreamError):
    """Kafka refused a record for good (over the size limit, not authorized, invalid): sending
    it again cannot help, so the input it was for can be neither applied nor dead-lettered.

    The worker stops without committing past that input, and the message names it.
    Operator action: read the reason; for a size limit, align the producer's
    PRODUCER_MAX_REQUEST_SIZE (Faust's, 1,000,000 bytes by default) with the topic's
    ``max.message.bytes``; then start the worker again.
    """


class CachePurgeFailed(ProfileStreamError):
    """A forget could not delete the subject's cached extractions from Redis, even after retries.

    The forget is not acknowledged: the worker stops and the command is redelivered.
    Operator action: bring Redis back (PROFILE_STREAM_REDIS_URL); the forget then completes.
    """

    retriable: ClassVar[bool] = True


class TopicMissing(ProfileStreamError, LookupError):
    """The topic does not exist on the broker (no worker has created it yet?)."""


class UnsupportedOperation(ProfileStreamError, NotImplementedError):
    """Asked of profile-stream something it does not do (a LangGraph store call with a free-form
    key, a vector search, a correction of a kind that takes none); the message says what it
    does instead."""
