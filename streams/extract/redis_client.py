"""The worker's Redis client (result cache and rate limit), from settings: ``redis://`` or
``rediss://`` (TLS, trusting PROFILE_STREAM_REDIS_SSL_CAFILE else the system's CAs), with the
password in the URL. The URL is a secret; :func:`redacted` is the form that may be shown."""

from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, ConnectionError, RedisError, ResponseError

from streams.errors import ConfigError
from streams.settings import Settings

__all__ = ["check_redis", "redacted", "redis_client"]

_URL = "PROFILE_STREAM_REDIS_URL"


def redacted(url: str) -> str:
    """The URL without its password (``rediss://:***@host:6380/0``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def redis_client(settings: Settings, *, timeout_s: float = 0.5) -> "aioredis.Redis":
    """A client for PROFILE_STREAM_REDIS_URL; each call's wait is bounded by ``timeout_s``."""
    url = settings.redis_url.get_secret_value()
    extra: dict[str, object] = {}
    if settings.redis_ssl_cafile is not None:
        if urlsplit(url).scheme != "rediss":
            raise ConfigError(f"PROFILE_STREAM_REDIS_SSL_CAFILE is set but {_URL} is not rediss://")
        extra["ssl_ca_certs"] = str(settings.redis_ssl_cafile)
    client: aioredis.Redis = aioredis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, **extra
    )
    return client


async def check_redis(settings: Settings) -> None:
    """Fail fast on a Redis the settings cannot use: a wrong or missing password, or TLS that
    does not verify. A Redis that is merely away is left to the worker (it runs without cache).

    Raises:
        ConfigError: naming the setting to fix.
    """
    client = redis_client(settings, timeout_s=5.0)
    shown = redacted(settings.redis_url.get_secret_value())
    try:
        await client.ping()
    except AuthenticationError as exc:
        raise ConfigError(
            f"Redis at {shown} refused the password ({exc}); check the password in {_URL}"
        ) from None
    except ResponseError as exc:
        if "NOAUTH" not in str(exc):
            raise
        raise ConfigError(
            f"Redis at {shown} needs a password; put it in {_URL} (rediss://:PASSWORD@host:port/0)"
        ) from None
    except ConnectionError as exc:
        text = str(exc)
        if "SSL" in text or "certificate" in text or "closed by server" in text:
            raise ConfigError(
                f"TLS to Redis at {shown} failed ({text}); check {_URL} (rediss:// for TLS, "
                "redis:// without) and PROFILE_STREAM_REDIS_SSL_CAFILE"
            ) from None
    except RedisError:
        pass
    finally:
        await client.aclose()
