"""What the bench feeds the worker: synthetic users, LoCoMo conversations, and the fake model
that answers each message with a small deterministic patch."""

import asyncio
import json
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from streams.cli.locomo import convert
from tests.fakes.llm_server import FakeLLM, _completion

__all__ = [
    "LOCOMO_DIR",
    "ScriptedModel",
    "chat",
    "latency",
    "locomo_conversations",
    "published_order",
    "synthetic",
]

LOCOMO_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "locomo"
_BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# model latency


def latency(spec: str, seed: int = 7) -> Callable[[], float] | None:
    """``"0"`` (no wait), ``"0.5"`` (fixed seconds) or ``"lognormal:0.5:0.6"`` (median, sigma)."""
    if spec in ("0", "0.0", "zero"):
        return None
    if spec.startswith("lognormal:"):
        _, median, sigma = spec.split(":")
        rng = random.Random(seed)
        mu, s = math.log(float(median)), float(sigma)
        return lambda: rng.lognormvariate(mu, s)
    fixed = float(spec)
    return lambda: fixed


class ScriptedModel(FakeLLM):
    """The test suite's fake OpenAI-compatible server, answering every ``user`` message with
    ``set last_conversation_summary = "<message id>: <start of the text>"``.

    The value names the message, so every message changes the profile and every batch emits
    one event. Each request is kept as ``{"at", "wall", "messages", "prompt_tokens"}``: its
    monotonic and wall-clock arrival, the messages asked about, and the prompt tokens computed
    as the fake's ``usage`` does (prompt characters / 4). ``peak_in_flight`` is the most
    requests it held at once.
    """

    def __init__(self, latency: Callable[[], float] | None = None) -> None:
        super().__init__(latency)
        self.in_flight = 0
        self.peak_in_flight = 0

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        messages = self._messages(body)
        prompt_tokens = sum(len(m["content"]) for m in body["messages"]) // 4
        record: dict[str, Any] = {
            "at": time.monotonic(),
            "wall": time.time(),
            "messages": messages,
            "prompt_tokens": prompt_tokens,
        }
        self.requests.append(record)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        wait = self.latency() if self.latency is not None else 0.0
        try:
            if wait:
                await asyncio.sleep(wait)
        finally:
            self.in_flight -= 1
        record["answered"] = time.time()
        operations = [
            {
                "field": "last_conversation_summary",
                "op": "set",
                "value": f"{m['message_id']}: {m['content'][:80]}",
                "message_id": m["message_id"],
                "quote": m["content"][:80],
            }
            for m in messages
            if m["role"] == "user"
        ]
        return _completion(body, orjson.dumps({"operations": operations}).decode())

    def asked_at(self) -> dict[str, float]:
        """Message id to the wall-clock time the model was (first) asked about it."""
        at: dict[str, float] = {}
        for r in self.requests:
            for m in r["messages"]:
                at.setdefault(m["message_id"], r["wall"])
        return at

    def answered_at(self) -> dict[str, float]:
        """Message id to the wall-clock time its (first) answer left the model."""
        at: dict[str, float] = {}
        for r in self.requests:
            for m in r["messages"]:
                at.setdefault(m["message_id"], r.get("answered", r["wall"]))
        return at

    def prompt_tokens(self, since: int = 0) -> int:
        return sum(r["prompt_tokens"] for r in self.requests[since:])

    def messages_asked(self, since: int = 0) -> int:
        return sum(len(r["messages"]) for r in self.requests[since:])


# ---------------------------------------------------------------------------------------------
# synthetic users

_TOPICS = ("hiking", "jazz", "sourdough", "chess", "python", "gardening", "cycling", "opera")


def chat(user: str, message_id: str, content: str, sent_at: datetime) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "user_id": user,
        "conversation_id": f"{user}-c1",
        "role": "user",
        "content": content,
        "sent_at": sent_at.isoformat(),
    }


def synthetic(users: int, per_user: int, tag: str = "m") -> list[dict[str, Any]]:
    """``users`` × ``per_user`` messages, round by round (every user's 1st, then every 2nd...),
    so a user's messages are spread over the whole input."""
    out = []
    for j in range(per_user):
        for i in range(users):
            topic = _TOPICS[(i + j) % len(_TOPICS)]
            out.append(
                chat(
                    f"user-{i:05d}",
                    f"{tag}-{i:05d}-{j:03d}",
                    f"Message {j} from user {i}: lately I spend my weekends on {topic}, "
                    f"and I would like to talk about it in more detail.",
                    _BASE_TIME + timedelta(seconds=j * 60 + i / 1000),
                )
            )
    return out


def published_order(messages: list[dict[str, Any]]) -> dict[str, list[str]]:
    """User id to its message ids in publish order."""
    order: dict[str, list[str]] = {}
    for m in messages:
        order.setdefault(m["user_id"], []).append(m["message_id"])
    return order


# ---------------------------------------------------------------------------------------------
# LoCoMo


def locomo_conversations(
    limit_files: int | None = None, limit_sessions: int | None = None
) -> list[list[list[dict[str, Any]]]]:
    """Conversations, each a list of sessions, each a list of chat messages (as JSON dicts),
    converted by :func:`streams.locomo.convert`."""
    files = sorted(LOCOMO_DIR.glob("*.json"))[:limit_files]
    if not files:
        raise RuntimeError(f"no LoCoMo files in {LOCOMO_DIR}")
    conversations = []
    for path in files:
        sessions: dict[str, list[dict[str, Any]]] = {}
        for msg in convert(json.loads(path.read_text()), path.stem):
            sessions.setdefault(msg.conversation_id, []).append(msg.model_dump(mode="json"))
        conversations.append(list(sessions.values())[:limit_sessions])
    return conversations
