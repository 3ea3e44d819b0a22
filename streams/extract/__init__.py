"""Extraction: what the new messages change in a profile.

``base`` is the interface the pipeline sees; ``llm`` (with ``completion`` and ``prompt``) asks an
OpenAI-compatible model; ``rules`` is the offline demo extractor; ``cache`` and ``ratelimit`` wrap
any extractor with Redis; ``calls`` counts model calls by the flush that made them. May import
``streams.core``, ``streams.errors``, ``streams.metrics``, ``streams.settings``, openai and
redis; never Faust or aiokafka.
"""
