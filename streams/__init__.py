"""profile-stream: chat messages on Kafka in, pydantic-validated user profiles and
profile-updated events out.

The packages say what each module may import (``tests/unit/test_architecture.py`` checks it):

- ``streams.core``: pure logic, no I/O. Records and versions, merge, migration, operator
  commands, codecs, profile schemas and kinds. Imports only ``schemas``, ``streams.errors``,
  pydantic (and its ``pydantic_core``), orjson and the standard library.
- ``streams.extract``: asking a model what the new messages change (the extractor interface,
  the LLM extractor and its completion reader, prompt, offline rules, Redis cache and rate
  limit). May import ``core``, openai and redis; never Faust.
- ``streams.pipeline``: what the worker does with an input record, in the order it happens:
  admission, the keyed scheduler, apply, publish, and the one error policy. May import
  ``core`` and ``extract``'s interface (and its ledger of model calls); never Faust,
  aiokafka or aiohttp.
- ``streams.web``: the HTTP views. ``streams.client``: what other apps import (no Faust);
  apps install it alone as ``profile_stream.client`` (clients/python, docs/packaging.md), with
  ``schemas`` and the modules of ours it imports.
  ``streams.cli``: the command line. ``streams.evaluation``: ``profile-stream eval``'s runners
  (the worker's own extraction without Kafka, or a worker process of its own); its scoring is
  pure, in ``streams.core.evaluation``.
- ``streams.app``: wiring only (topics, tables, agents, hooks); ``streams.faust_glue``: every
  touch of Faust internals, in one module.
- ``streams.settings``, ``streams.errors``, ``streams.metrics``: shared by all of the above.
- ``streams.kafka_security``: how every Kafka client connects (servers, TLS, SASL); shared by
  the settings, the client and the CLI. Imports aiokafka and pydantic, never Faust;
  ``streams.kafka_oauth`` holds its OAUTHBEARER token-provider hook (aiokafka only), and
  ``streams.kafka_credentials`` turns it into the worker's Faust ``broker_credentials``.
"""
