"""What a worker does with one input record, in the order it happens.

``admission`` (decode, check, route) → ``scheduler`` (per-user batches, acks in offset order)
→ ``apply`` (load, extract, merge, next version) → ``publish`` (store, changelog acked, emit,
final record) → the job's acknowledgement. ``policy`` is the one place that decides what an
error means (skip, dead-letter, exit); ``job`` and ``ports`` are what the steps pass around.

May import ``streams.core``, ``streams.extract.base`` (the extractor interface),
``streams.extract.calls`` (a flush's ledger of model calls), ``streams.errors``,
``streams.metrics`` and ``streams.settings``; never Faust, aiokafka, redis, openai or aiohttp:
the Faust side reaches it through ``streams.app`` and ``streams.faust_glue``.
"""
