"""Benchmarks of profile-stream on the local stack: ``python -m bench.run [--short]``."""

__all__: list[str] = []
