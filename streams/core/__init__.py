"""Pure logic: no I/O, no Faust, aiokafka, redis, openai or aiohttp.

Modules here import only ``schemas``, ``streams.core``, ``streams.errors``, pydantic (and its
``pydantic_core``), orjson and the standard library, so every rule of the product is
unit-tested without services.
"""
