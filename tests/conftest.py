"""Shared test configuration: the repository root is importable (tests.fakes, bench)."""
