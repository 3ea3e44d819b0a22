"""The HTTP views every worker serves: auth, routing to the partition owner, the views.

May import ``streams.core``, ``streams.settings``, ``streams.metrics``, aiohttp and Faust's
public web API; Faust internals only through ``streams.faust_glue``.
"""
