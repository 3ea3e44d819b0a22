"""Requests to a worker's HTTP views, over a session the caller holds: the one place that builds
profile URLs and turns every failure into a :class:`~streams.errors.ProfileStreamError`.

The module functions of :mod:`streams.client.http` open a session per call; the long-lived
clients (:mod:`streams.client.client`) keep one, so its connections (and their TLS handshakes)
are reused. A URL that is not ``http(s)://host[:port]`` is a ``ConfigError``; nothing listening
(or no connection within ``CONNECT_S``) fails at once with the URL and what to check; a worker
that accepts but does not answer within ``timeout_s`` raises
:class:`~streams.errors.ServiceTimeout`; an answer that is not a worker's is a
:class:`~streams.errors.ServiceError` saying so.
"""

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import orjson

from streams.errors import (
    ConfigError,
    HistoryUnavailable,
    ProfileNotFound,
    ProfileNotFresh,
    Refused,
    ServiceError,
    ServiceTimeout,
    WorkerUnreachable,
)

__all__ = [
    "CONNECT_S",
    "Expect",
    "client_timeout",
    "failure",
    "json_object",
    "new_session",
    "one_shot",
    "profile_url",
    "query_of",
    "request",
]

#: Seconds to open a connection: a worker that listens accepts at once (and a lost SYN is sent
#: again after 1 s), so a command that finds none says so within 2 s of starting.
CONNECT_S = 1.2

#: What ``ssl=`` aiohttp takes: a context (a private CA), False (no verification), or None
#: (the system's CAs).
SSLSetting = ssl.SSLContext | bool | None


def client_timeout(timeout_s: float) -> aiohttp.ClientTimeout:
    """A whole request within ``timeout_s``, its connection within ``CONNECT_S``."""
    return aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(CONNECT_S, timeout_s))


def new_session(tls: SSLSetting = None) -> aiohttp.ClientSession:
    """A session whose connections are pooled and verified with ``tls``; each request sets its
    own timeout."""
    connector = aiohttp.TCPConnector(ssl=True if tls is None else tls)
    return aiohttp.ClientSession(connector=connector)


@asynccontextmanager
async def one_shot(tls: SSLSetting = None) -> AsyncIterator[aiohttp.ClientSession]:
    """A session for one call of the module functions, closed after it."""
    async with new_session(tls) as session:
        yield session


def profile_url(base_url: str, user_id: str, kind: str = "user", suffix: str = "") -> str:
    """``{base_url}/profiles/{user_id}{suffix}`` (``/profiles/{kind}/{subject}`` for another
    kind), each id percent-quoted so ``acme/alice`` or ``who?x`` names exactly that user.

    Raises:
        ConfigError: ``base_url`` is not an http(s) URL.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"worker URL {base_url!r} is not an http(s) URL; give it as http://host:6066"
        )
    subject = quote(user_id, safe="")
    path = subject if kind == "user" else f"{quote(kind, safe='')}/{subject}"
    return f"{base_url.rstrip('/')}/profiles/{path}{suffix}"


def query_of(params: Mapping[str, str]) -> str:
    """``?a=1&b=2``, or nothing for no parameters."""
    return "?" + urlencode(params) if params else ""


def _why_not_connected(exc: aiohttp.ClientConnectorError | aiohttp.ServerTimeoutError) -> str:
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return f"no connection within {CONNECT_S:g}s"
    if isinstance(exc.os_error, socket.gaierror):  # aiohttp before 3.10 has no DNS error class
        return f"unknown host {exc.host}"
    if isinstance(exc.os_error, ConnectionRefusedError):
        return "connection refused"
    return str(exc.os_error) or type(exc.os_error).__name__


def failure(url: str, exc: BaseException, timeout_s: float) -> ServiceError:
    """The client error for a request to ``url`` that failed with ``exc``."""
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerTimeoutError):
        # Refused, no such host, or no connection within CONNECT_S (the only socket timeout).
        reason = _why_not_connected(exc)
        return WorkerUnreachable(
            f"cannot connect to {url} ({reason}); is a worker listening there?"
        )
    if isinstance(exc, TimeoutError):
        return ServiceTimeout(
            f"{url} accepted the connection but did not answer within {timeout_s:g}s; "
            "is the worker overloaded or stuck?"
        )
    reason = str(exc) or type(exc).__name__
    return WorkerUnreachable(f"cannot reach {url} ({reason}); is a worker running?")


def _reason(body: bytes) -> str:
    """The worker's ``{"error": ...}`` message, else the start of whatever answered."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    start = body[:200].decode("utf-8", "replace")
    return f"{start!r}, not as a profile-stream worker answers; check the URL"


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return max(0.0, float(headers.get("Retry-After", "1")))
    except ValueError:  # an HTTP date: not what workers send
        return 1.0


@dataclass(frozen=True)
class Expect:
    """What a request expects: the status of success, and the errors some statuses mean.

    ``missing`` is raised on a 404 (``detailed``: with the worker's reason, which names the
    version or time asked for); ``not_fresh`` on a 504 (a read-your-writes read that timed
    out), with the worker's reason. A 410 is always :class:`HistoryUnavailable`.
    """

    ok: int = 200
    missing: ProfileNotFound | None = None
    detailed: bool = False
    not_fresh: ProfileNotFresh | None = None


def _refusal(url: str, status: int, answer: bytes, expect: Expect) -> Exception:
    if status == 404 and expect.missing is not None:
        missing = expect.missing
        return ProfileNotFound(f"{missing}: {_reason(answer)}") if expect.detailed else missing
    if status == 504 and expect.not_fresh is not None:
        late = expect.not_fresh
        return ProfileNotFresh(
            f"{late} ({_reason(answer)})", message_id=late.message_id, timeout_s=late.timeout_s
        )
    if status == 410:
        return HistoryUnavailable(_reason(answer))
    return Refused(f"{url} answered {status}: {_reason(answer)}", status=status)


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    token: str,
    timeout_s: float,
    expect: Expect = Expect(),  # noqa: B008 - frozen
    attempts: int = 1,
    body: bytes | None = None,
) -> bytes:
    """The body of ``url``'s answer with status ``expect.ok``.

    Retries 503 (a rebalance in progress) honouring ``Retry-After``, and a connection dropped
    mid-answer, up to ``attempts`` times; nothing listening is not retried.
    """
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    timeout = client_timeout(timeout_s)
    for attempt in range(1, attempts + 1):
        try:
            async with session.request(
                method, url, headers=headers, data=body, timeout=timeout
            ) as response:
                answer = await response.read()
                if response.status == expect.ok:
                    return answer
                if response.status != 503 or attempt == attempts:
                    raise _refusal(url, response.status, answer, expect)
                delay = _retry_after(response.headers)
        except (aiohttp.ClientConnectorError, aiohttp.ServerTimeoutError, TimeoutError) as exc:
            raise failure(url, exc, timeout_s) from exc
        except aiohttp.ClientError as exc:
            if attempt == attempts:
                raise failure(url, exc, timeout_s) from exc
            delay = 1.0
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def json_object(url: str, answer: bytes, key: str) -> dict[str, Any]:
    """The answer as a JSON object that has ``key``, or a ServiceError saying it is not a
    worker's."""
    try:
        data = orjson.loads(answer)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or key not in data:
        raise ServiceError(
            f"{url} answered {answer[:80].decode('utf-8', 'replace')!r}, not as a "
            "profile-stream worker answers; check the URL"
        )
    return data
