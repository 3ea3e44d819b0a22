"""The extractor that asks an OpenAI-compatible model, with a timeout, retries and backoff."""

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

import openai
import orjson
from openai import AsyncOpenAI, DefaultAioHttpClient

from schemas import ChatMessage, ModelUsage
from streams.core.kinds import USER
from streams.core.profile_schema import ProfileSchema
from streams.errors import AnswerCutOff, ExtractionFailed, InvalidModelOutput, ModelUnavailable
from streams.extract.base import Extraction
from streams.extract.calls import CallOutcome, record
from streams.extract.completion import Completion, read_completion
from streams.extract.failures import describe_transport_failure
from streams.extract.prompt import ParsedPatch, build_messages, parse_patch, response_format
from streams.extract.ratelimit import RateLimiter
from streams.metrics import (
    EXTRACTION_FAILURES,
    MODEL_ANSWERS_REPAIRED,
    MODEL_LATENCY,
    MODEL_RETRIES,
    TOKENS,
)
from streams.settings import Settings

__all__ = ["LLMExtractor"]

logger = logging.getLogger(__name__)
_RETRY_AFTER_CAP_S = 60.0
#: The second ask after an answer cut off with nothing complete: a model that loops repeats
#: tokens, which this makes costly.
_ANTI_REPETITION = {"frequency_penalty": 0.5}
_CUT_OFF = (
    "model answer was cut off at the output-token limit twice, with no complete operation "
    "(finish_reason=length; the second ask penalised repetition): raise "
    "PROFILE_STREAM_LLM_MAX_OUTPUT_TOKENS or lower PROFILE_STREAM_MAX_BATCH_MESSAGES, then "
    "re-publish the dead letters"
)


def _retry_after(exc: openai.APIStatusError) -> float | None:
    raw = exc.response.headers.get("retry-after")
    try:
        return min(float(str(raw)), _RETRY_AFTER_CAP_S) if raw is not None else None
    except ValueError:
        return None


def _total(spent: list[ModelUsage]) -> ModelUsage:
    return ModelUsage(
        calls=sum(u.calls for u in spent),
        prompt_tokens=sum(u.prompt_tokens for u in spent),
        completion_tokens=sum(u.completion_tokens for u in spent),
    )


def _read(completion: Completion) -> ParsedPatch:
    """The patch in ``completion``, counting the repair it needed."""
    try:
        parsed = parse_patch(completion.content)
    except InvalidModelOutput:
        if completion.cut_off:
            raise AnswerCutOff("model answer cut off before its first operation") from None
        raise
    if completion.cut_off and not parsed.operations:
        raise AnswerCutOff("model answer cut off before its first operation")
    if parsed.repair is not None:
        MODEL_ANSWERS_REPAIRED.labels(parsed.repair).inc()
    return parsed


class LLMExtractor:
    """Structured-output chat completions through :class:`openai.AsyncOpenAI`.

    Retries 429, 5xx, timeouts, dropped connections and unreadable answers up to
    ``llm_max_attempts`` with exponential backoff and jitter, waiting at least what a
    ``Retry-After`` header asks. An answer cut off at the output bound keeps its complete
    operations; one with none is asked once more at once, with repetition penalised. Anything
    else, or a spent budget, raises ExtractionFailed.
    """

    def __init__(self, settings: Settings, limiter: RateLimiter | None = None) -> None:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
        self._client = AsyncOpenAI(
            api_key=key,
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout_s,
            max_retries=0,  # retries are ours: one policy, with Retry-After and jitter
            # The SDK's aiohttp transport: less CPU per call than its default (bench/README.md).
            http_client=DefaultAioHttpClient(),
        )
        self._settings = settings
        self._base_url = str(self._client.base_url)
        self._limiter = limiter
        self.name = f"openai:{settings.model}"

    async def extract(
        self,
        profile: dict[str, Any],
        messages: Sequence[ChatMessage],
        schema: ProfileSchema,
        *,
        subject: str | None = None,
        kind: str = USER,
        context: Sequence[ChatMessage] = (),
    ) -> Extraction:
        """Ask the model, retrying what may pass; each call's outcome is recorded for the
        metrics (:mod:`streams.extract.calls`), and the tokens of every answer read are in the
        result's ``usage``. A retry is counted by its reason, and giving up by its cause (what
        ``profile-stream eval`` reports)."""
        try:
            request = build_messages(profile, messages, schema, context)
            return await self._attempts(request, messages, schema)
        except ExtractionFailed as exc:
            EXTRACTION_FAILURES.labels(exc.cause).inc()
            raise

    async def _attempts(
        self, request: list[dict[str, str]], messages: Sequence[ChatMessage], schema: ProfileSchema
    ) -> Extraction:
        """The attempts of one extraction (see :meth:`extract`)."""
        spent: list[ModelUsage] = []
        fmt = response_format(schema, sum(m.role in schema.source_roles for m in messages))
        estimate = sum(len(m["content"]) for m in request) // 4
        attempts = self._settings.llm_max_attempts
        sampling: dict[str, float] = {}
        for attempt in range(1, attempts + 1):
            if self._limiter is not None:
                await self._limiter.acquire(estimate)
            try:
                parsed = await self._call(request, fmt, spent, sampling)
            except ExtractionFailed as exc:
                record(CallOutcome.FAILED)
                exc.attempts = attempt
                raise
            except AnswerCutOff as exc:
                if sampling or attempt == attempts:
                    record(CallOutcome.FAILED)
                    raise ExtractionFailed(_CUT_OFF, attempts=attempt, cause="cut_off") from exc
                record(CallOutcome.CUT_OFF_RETRY)
                # The same request at temperature 0 loops the same way: ask once more with
                # repetition penalised, at once (the server is fine).
                sampling = _ANTI_REPETITION
                MODEL_ANSWERS_REPAIRED.labels("retried_cut_off").inc()
                logger.warning("model answer cut off attempt=%d retry=penalised", attempt)
                continue
            except (ModelUnavailable, InvalidModelOutput) as exc:
                reason = "unavailable" if isinstance(exc, ModelUnavailable) else "invalid_output"
                if attempt == attempts:
                    record(CallOutcome.FAILED)
                    raise ExtractionFailed(
                        f"model failed {attempts} times, last: {exc}; check the endpoint, "
                        "then re-publish the dead letters",
                        attempts=attempts,
                        cause=reason,
                    ) from exc
                record(CallOutcome.RETRIED)
                MODEL_RETRIES.labels(reason).inc()
                await self._back_off(attempt, exc)
                continue
            except BaseException as exc:  # cancelled at the model (a revoke, a stop), or a bug
                cancelled = isinstance(exc, asyncio.CancelledError)
                record(CallOutcome.FENCED_REDO if cancelled else CallOutcome.FAILED)
                raise
            record(CallOutcome.OK)
            return Extraction(parsed.operations, parsed.malformed, usage=_total(spent))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _back_off(self, attempt: int, exc: ModelUnavailable | InvalidModelOutput) -> None:
        """Wait before try ``attempt`` + 1, at least what a ``Retry-After`` asked."""
        delay = self._delay(attempt, getattr(exc, "retry_after", None))
        logger.warning("model call failed attempt=%d retry_in=%.2fs reason=%s", attempt, delay, exc)
        await asyncio.sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        s = self._settings
        backoff: float = min(s.llm_backoff_max_s, s.llm_backoff_s * 2.0 ** (attempt - 1))
        jittered = backoff * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto
        return max(jittered, retry_after or 0.0)

    async def _call(
        self,
        request: list[dict[str, str]],
        fmt: dict[str, Any],
        spent: list[ModelUsage],
        sampling: dict[str, float],
    ) -> ParsedPatch:
        """One call: the operations and the malformed ones; what the answer cost goes to
        ``spent`` before its content is read (an unreadable answer was paid for too).

        An answer cut at the output bound keeps its complete operations; with none it raises
        :class:`AnswerCutOff`."""
        started = time.monotonic()
        body = {
            "model": self._settings.model,
            "messages": request,
            "response_format": fmt,
            "temperature": 0,
            # A bound on every answer: a model stuck repeating inside the JSON grammar stops
            # here instead of filling its context until the call times out.
            self._settings.llm_max_tokens_field: self._settings.llm_max_output_tokens,
            **sampling,
        }
        try:
            # The SDK's low-level post (its auth, base URL, timeout, errors) with a body we
            # built and serialized: ``chat.completions.create`` re-walks the whole request
            # against its typed params and builds typed models of the answer, at several times
            # the CPU of this call (bench/README.md, "Why these defaults").
            answer = await self._client.post(
                "/chat/completions", content=orjson.dumps(body), cast_to=object
            )
        except openai.APIStatusError as exc:
            if exc.status_code in (408, 409, 429) or exc.status_code >= 500:
                raise ModelUnavailable(
                    f"HTTP {exc.status_code}", retry_after=_retry_after(exc)
                ) from exc
            raise ExtractionFailed(
                f"model endpoint refused the request: HTTP {exc.status_code}",
                cause="endpoint_refused",
            ) from exc
        except openai.APIConnectionError as exc:  # timeouts included: the cause tells which
            raise ModelUnavailable(
                describe_transport_failure(exc, self._base_url, self._settings.llm_timeout_s)
            ) from exc
        finally:
            MODEL_LATENCY.observe(time.monotonic() - started)
        completion = read_completion(answer)
        TOKENS.labels("prompt").inc(completion.prompt_tokens)
        TOKENS.labels("completion").inc(completion.completion_tokens)
        spent.append(
            ModelUsage(
                calls=1,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
            )
        )
        return _read(completion)

    async def forget(self, subject: str, *, kind: str = USER) -> int:
        """Nothing is kept here (the cache wrapping it keeps answers)."""
        return 0

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()
