"""The pure parts of the model client: backoff with jitter, and reading Retry-After."""

from types import SimpleNamespace

import openai
import pytest

from streams.extract.llm import LLMExtractor, _retry_after
from streams.settings import load_settings


@pytest.fixture
def extractor(clean_env: pytest.MonkeyPatch) -> LLMExtractor:
    clean_env.setenv("PROFILE_STREAM_LLM_BACKOFF_S", "0.5")
    clean_env.setenv("PROFILE_STREAM_LLM_BACKOFF_MAX_S", "4")
    return LLMExtractor(load_settings())


def _status_error(headers: dict[str, str]) -> openai.APIStatusError:
    # A stand-in for the HTTP response: only what APIStatusError and _retry_after read.
    response = SimpleNamespace(status_code=429, request=None, headers=headers)
    return openai.APIStatusError("rate limited", response=response, body=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (30, 4.0)]
)
def test_backoff_doubles_up_to_the_ceiling_with_jitter(
    extractor: LLMExtractor, attempt: int, ceiling: float
) -> None:
    delays = [extractor._delay(attempt, None) for _ in range(300)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1  # jittered, so workers do not retry in lockstep


def test_retry_after_is_a_floor(extractor: LLMExtractor) -> None:
    assert all(extractor._delay(1, 30.0) == 30.0 for _ in range(50))
    assert all(0.25 <= extractor._delay(1, 0.0) <= 0.5 for _ in range(50))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "3600"}, 60.0),
        ({}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
    ],
)
def test_retry_after_header(headers: dict[str, str], expected: float | None) -> None:
    assert _retry_after(_status_error(headers)) == expected
