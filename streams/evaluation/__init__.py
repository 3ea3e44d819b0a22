"""``profile-stream eval``: the extraction-quality evaluation's runners (docs/evaluation.md).

``dataset`` reads a labeled file and turns it into chat messages; ``variants`` says what each
configuration changes; ``direct`` runs the worker's own extraction and merge without Kafka;
``pipeline`` runs the real thing (a worker process, Kafka, the HTTP views); ``report`` scores
and renders. The scoring itself is pure, in :mod:`streams.core.evaluation`. May import
``streams.core``, ``streams.extract``, ``streams.pipeline.flush``, ``streams.client``,
``streams.settings`` and ``streams.errors``; never Faust.
"""
