"""The HTTP views every worker serves.

``views`` (the URL table and ``register_views``), ``auth`` (bearer tokens, one middleware),
``profiles`` and ``probes`` (the views), ``reader`` (read here or at the partition's owner),
``routing`` (find the owner, forward to it), ``responses`` (the JSON answers).

May import ``streams.core``, ``streams.settings``, ``streams.metrics``,
``streams.extract.prompt``, aiohttp and Faust's public web API; Faust internals only through
``streams.faust_glue``.
"""
