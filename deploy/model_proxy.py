"""A pass-through proxy in front of a model server that records each call, for ``make real-model``.

The worker talks to the proxy as to any OpenAI-compatible endpoint; the bytes go to the server
and back unchanged. What is recorded is what the lane reports: the output bound and the
``response_format`` the worker sent, and the server's status, answer, finish reason, token
counts and latency. A worker that gives up (its timeout) closes the connection; the proxy then
drops its own request too, so the server stops generating, as it would without the proxy.
"""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

__all__ = ["Call", "RecordingProxy"]

_BOUND_FIELDS = ("max_tokens", "max_completion_tokens", "n_predict")


@dataclass
class Call:
    """One request the proxy passed on, and what came back."""

    path: str
    request: str = field(default="", repr=False)  # the body as sent, to find message ids in
    bound_field: str | None = None
    bound: int | None = None
    response_format: str | None = None
    strict: bool | None = None
    status: int | None = None  # None: no answer reached the worker
    latency_s: float = 0.0
    finish_reason: str | None = None
    content: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    timings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_request(cls, path: str, body: bytes) -> "Call":
        call = cls(path, request=body.decode(errors="replace"))
        try:
            sent = orjson.loads(body)
        except orjson.JSONDecodeError:
            call.error = "the request body is not JSON"
            return call
        for name in _BOUND_FIELDS:
            if isinstance(sent.get(name), int):
                call.bound_field, call.bound = name, sent[name]
                break
        fmt = sent.get("response_format")
        if isinstance(fmt, dict):
            call.response_format = fmt.get("type")
            call.strict = (fmt.get("json_schema") or {}).get("strict")
        return call

    def answered(self, status: int, payload: bytes, latency_s: float) -> None:
        self.status, self.latency_s = status, latency_s
        try:
            answer = orjson.loads(payload)
        except orjson.JSONDecodeError:
            answer = None
        if status != 200 or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            self.error = str(message or payload[:300].decode(errors="replace"))
            return
        choice = (answer.get("choices") or [{}])[0]
        self.finish_reason = choice.get("finish_reason")
        self.content = (choice.get("message") or {}).get("content")
        usage = answer.get("usage") or {}
        self.prompt_tokens = usage.get("prompt_tokens")
        self.completion_tokens = usage.get("completion_tokens")
        self.timings = answer.get("timings") or {}


class RecordingProxy:
    """Serves on 127.0.0.1:``port`` (0: a free one), forwarding every request to ``upstream``."""

    def __init__(self, upstream: str, port: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.calls: list[Call] = []
        self.url = ""
        self._port = port
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> str:
        """Start serving; returns the proxy's base URL (no path)."""
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        # The worker's timeout closes its connection: cancel the handler, and with it the
        # request to the server (which then stops generating for it).
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # first: no request may come in on a closed session
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> "RecordingProxy":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        call = Call.of_request(request.path, body)
        self.calls.append(call)
        started = time.monotonic()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        try:
            async with self._session.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers
            ) as upstream:
                payload = await upstream.read()
                call.answered(upstream.status, payload, time.monotonic() - started)
                return web.Response(
                    body=payload, status=upstream.status, content_type=upstream.content_type
                )
        except asyncio.CancelledError:
            call.latency_s = time.monotonic() - started
            call.error = f"the worker gave up after {call.latency_s:.1f}s (its timeout)"
            raise
        except aiohttp.ClientError as exc:
            call.latency_s = time.monotonic() - started
            call.error = f"the model server did not answer: {type(exc).__name__}: {exc}"
            return web.Response(status=502, text=call.error)
