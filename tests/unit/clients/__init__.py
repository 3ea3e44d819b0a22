"""The client distributions built from the repository (``clients/``)."""

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]
PYTHON_CLIENT = ROOT / "clients" / "python"


def load_staging() -> ModuleType:
    """``clients/python/build_backend/profile_stream_staging.py``, which is no package of ours:
    the build backend puts its folder on ``sys.path``, the tests load it by path."""
    path = PYTHON_CLIENT / "build_backend" / "profile_stream_staging.py"
    spec = importlib.util.spec_from_file_location("profile_stream_staging", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
