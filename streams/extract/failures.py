"""What went wrong on the way to the model endpoint, said so that an operator can act on it.

The SDK's aiohttp transport reports a refused connection, an unknown host and a silent
server alike as ``APITimeoutError("Request timed out.")``; the cause chain still holds the
socket's own error, so it is read here to name the real failure and the setting to check.
"""

import socket
import ssl
from urllib.parse import urlsplit

import openai

__all__ = ["describe_transport_failure"]

_SETTING = "PROFILE_STREAM_OPENAI_BASE_URL"


def describe_transport_failure(
    exc: openai.APIConnectionError, base_url: str, timeout_s: float
) -> str:
    """One line naming the failure (refused, unknown host, TLS, timeout) and what to check."""
    host = _host(base_url)
    causes = _chain(exc)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return (
            f"connection refused by {host}: no model server listens there; start it or fix "
            f"{_SETTING} ({base_url})"
        )
    if any(isinstance(c, socket.gaierror) for c in causes):
        return f"cannot resolve the model host {host}: check {_SETTING} ({base_url}) and DNS"
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return (
            f"TLS with the model endpoint {host} failed ({_first_line(causes)}): check the "
            f"scheme in {_SETTING} and the server's certificate"
        )
    if isinstance(exc, openai.APITimeoutError):
        if any("connect" in type(c).__name__.lower() for c in causes):
            return (
                f"could not connect to {host} within {timeout_s}s: check {_SETTING} and the "
                "network path to it"
            )
        return (
            f"no answer from {host} within {timeout_s}s (PROFILE_STREAM_LLM_TIMEOUT_S): the "
            "model is slow or overloaded"
        )
    return f"connection to the model endpoint {host} failed ({_first_line(causes)})"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _host(base_url: str) -> str:
    parts = urlsplit(base_url)
    return parts.netloc or base_url


def _first_line(causes: list[BaseException]) -> str:
    deepest = causes[-1]
    text = str(deepest).splitlines()[0] if str(deepest) else ""
    return f"{type(deepest).__name__}: {text}"[:200]
