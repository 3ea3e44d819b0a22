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

from schemas import ChatMessage, ModelUsage, PatchOperation
from streams.core.kinds import USER
from streams.core.profile_schema import ProfileSchema
from streams.errors import ExtractionFailed, InvalidModelOutput, ModelUnavailable
from streams.extract.base import Extraction
from streams.extract.completion import read_completion
from streams.extract.failures import describe_transport_failure
from streams.extract.prompt import build_messages, parse_patch, response_format
from streams.extract.ratelimit import RateLimiter
from streams.metrics import MODEL_CALLS, MODEL_LATENCY, TOKENS
from streams.settings import Settings

__all__ = ["LLMExtractor"]

logger = logging.getLogger(__name__)
_RETRY_AFTER_CAP_S = 60.0


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


class LLMExtractor:
    """Structured-output chat completions through :class:`openai.AsyncOpenAI`.

    Retries 429, 5xx, timeouts, dropped connections and unreadable answers up to
    ``llm_max_attempts`` with exponential backoff and jitter, waiting at least what a
    ``Retry-After`` header asks. Anything else, or a spent budget, raises ExtractionFailed.
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
    ) -> Extraction:
        """Ask the model, retrying what may pass; every call made is counted in the metrics,
        and the tokens of every answer read are in the result's ``usage``."""
        request = build_messages(profile, messages, schema)
        spent: list[ModelUsage] = []
        fmt = response_format(schema)
        estimate = sum(len(m["content"]) for m in request) // 4
        attempts = self._settings.llm_max_attempts
        for attempt in range(1, attempts + 1):
            try:
                if self._limiter is not None:
                    await self._limiter.acquire(estimate)
                operations, malformed = await self._call(request, fmt, spent)
            except ExtractionFailed as exc:
                exc.attempts = attempt
                raise
            except (ModelUnavailable, InvalidModelOutput) as exc:
                if attempt == attempts:
                    raise ExtractionFailed(
                        f"model failed {attempts} times, last: {exc}; check the endpoint, "
                        "then re-publish the dead letters",
                        attempts=attempts,
                    ) from exc
                delay = self._delay(attempt, getattr(exc, "retry_after", None))
                logger.warning(
                    "model call failed attempt=%d retry_in=%.2fs reason=%s", attempt, delay, exc
                )
                await asyncio.sleep(delay)
                continue
            return Extraction(operations, malformed, usage=_total(spent))
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        s = self._settings
        backoff: float = min(s.llm_backoff_max_s, s.llm_backoff_s * 2.0 ** (attempt - 1))
        jittered = backoff * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto
        return max(jittered, retry_after or 0.0)

    async def _call(
        self, request: list[dict[str, str]], fmt: dict[str, Any], spent: list[ModelUsage]
    ) -> tuple[list[PatchOperation], list[str]]:
        """One call: the operations and the malformed ones; what the answer cost goes to
        ``spent`` before its content is read (an unreadable answer was paid for too)."""
        MODEL_CALLS.inc()
        started = time.monotonic()
        body = {
            "model": self._settings.model,
            "messages": request,
            "response_format": fmt,
            "temperature": 0,
            # A bound on every answer: a model stuck repeating inside the JSON grammar stops
            # here instead of filling its context until the call times out.
            self._settings.llm_max_tokens_field: self._settings.llm_max_output_tokens,
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
                f"model endpoint refused the request: HTTP {exc.status_code}"
            ) from exc
        except openai.APIConnectionError as exc:  # timeouts included: the cause tells which
            raise ModelUnavailable(
                describe_transport_failure(exc, self._base_url, self._settings.llm_timeout_s)
            ) from exc
        finally:
            MODEL_LATENCY.observe(time.monotonic() - started)
        content, prompt_tokens, completion_tokens = read_completion(answer)
        TOKENS.labels("prompt").inc(prompt_tokens)
        TOKENS.labels("completion").inc(completion_tokens)
        spent.append(
            ModelUsage(calls=1, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        )
        return parse_patch(content)

    async def forget(self, subject: str, *, kind: str = USER) -> int:
        """Nothing is kept here (the cache wrapping it keeps answers)."""
        return 0

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()
