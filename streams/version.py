"""The installed profile-stream's version, as the CLI's ``--version`` and the OpenAPI document
say it."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["DISTRIBUTION", "installed_version"]

#: The distribution name in pyproject.toml.
DISTRIBUTION = "profile-stream"


def installed_version() -> str:
    """The version of the installed distribution; ``0+unknown`` when run from a source tree
    that was never installed."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"
