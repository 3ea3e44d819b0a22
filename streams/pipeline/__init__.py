"""What a worker does with one input record, in the order it happens.

May import ``streams.core``, ``streams.extract.base`` (the extractor interface),
``streams.errors``, ``streams.metrics`` and ``streams.settings``; never Faust, aiokafka, redis,
openai or aiohttp: the Faust side reaches it through ``streams.app`` and ``streams.faust_glue``.
"""
