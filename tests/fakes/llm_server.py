"""A scripted OpenAI-compatible chat-completions server, for tests and benchmarks.

The worker reaches it through the real ``openai`` client. A test says which operations the
"model" returns for which message (``on``), or how it fails (``Fault``): HTTP errors,
Retry-After, stalls past the client's timeout, garbage, refusals. Every request is recorded,
with the usage the answer reported when it was a scripted (successful) one.
"""

import asyncio
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

__all__ = ["Fault", "FakeLLM", "Rule"]

_BLOCK = re.compile(r"<<<MESSAGES\n(.*)\nMESSAGES>>>", re.S)


@dataclass
class Fault:
    """A failure the server answers with, ``times`` times (then the rule's operations)."""

    status: int = 500
    body: str = '{"error": {"message": "boom"}}'
    headers: dict[str, str] = field(default_factory=dict)
    stall_s: float = 0.0
    content: str | None = None  # a 200 whose message content is this text (garbage, bad ops)
    refusal: str | None = None
    finish_reason: str = "stop"  # "length": an answer cut off at the output-token limit
    times: int = 1


@dataclass
class Rule:
    """Operations for messages whose content contains ``match`` (message ids, and the quote as
    ``match``, are filled in unless the operation gives them)."""

    match: str
    operations: list[dict[str, Any]]
    faults: list[Fault] = field(default_factory=list)
    roles: tuple[str, ...] = ("user",)


class FakeLLM:
    """The server. Start with :meth:`start`, stop with :meth:`stop`; ``url`` is the base URL."""

    def __init__(self, latency: Callable[[], float] | None = None) -> None:
        self.rules: list[Rule] = []
        self.requests: list[dict[str, Any]] = []
        self.latency = latency
        self._runner: web.AppRunner | None = None
        self.url = ""

    def on(
        self,
        match: str,
        *operations: dict[str, Any],
        faults: list[Fault] | None = None,
        roles: tuple[str, ...] = ("user",),
    ) -> Rule:
        """Script the answer for messages of ``roles`` whose content contains ``match``."""
        rule = Rule(match, list(operations), list(faults or []), roles)
        self.rules.append(rule)
        return rule

    def calls_for(self, text: str) -> int:
        """How many requests carried a message containing ``text``."""
        return sum(any(text in m["content"] for m in r["messages"]) for r in self.requests)

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_post("/chat/completions", self._complete)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{bound}/v1"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _messages(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        text = body["messages"][-1]["content"]
        found = _BLOCK.search(text)
        return orjson.loads(found.group(1)) if found else []

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = self._messages(body)
        self.requests.append({"at": time.monotonic(), "messages": messages, "body": body})
        if self.latency is not None:
            await asyncio.sleep(self.latency())
        operations: list[dict[str, Any]] = []
        for message in messages:
            for rule in self.rules:
                if message["role"] not in rule.roles or rule.match not in message["content"]:
                    continue
                fault = next((f for f in rule.faults if f.times > 0), None)
                if fault is not None:
                    fault.times -= 1
                    return await self._fail(fault, body)
                # As a model would: the quote is the words matched, the id the message's (a
                # context turn shows none).
                operations += [
                    {
                        "value": None,
                        "quote": rule.match,
                        **op,
                        "message_id": op.get("message_id", message.get("message_id", "")),
                    }
                    for op in rule.operations
                ]
        answer = _completion(body, orjson.dumps({"operations": operations}).decode())
        self.requests[-1]["usage"] = orjson.loads(answer.body)["usage"]  # type: ignore[arg-type]
        return answer

    async def _fail(self, fault: Fault, body: dict[str, Any]) -> web.StreamResponse:
        if fault.stall_s:
            await asyncio.sleep(fault.stall_s)
        if fault.content is not None or fault.refusal is not None:
            return _completion(
                body, fault.content, refusal=fault.refusal, finish_reason=fault.finish_reason
            )
        return web.Response(
            status=fault.status,
            text=fault.body,
            headers=fault.headers,
            content_type="application/json",
        )


def _completion(
    body: dict[str, Any],
    content: str | None,
    refusal: str | None = None,
    finish_reason: str = "stop",
) -> web.Response:
    prompt_tokens = sum(len(m["content"]) for m in body["messages"]) // 4
    payload = {
        "id": f"chatcmpl-{random.getrandbits(64):x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None if refusal else content,
                    "refusal": refusal,
                },
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 20,
            "total_tokens": prompt_tokens + 20,
        },
    }
    return web.json_response(payload)
