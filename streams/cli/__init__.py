"""The ``profile-stream`` command line: the worker, and what operators and users touch."""

from streams.cli.main import main

__all__ = ["main"]
