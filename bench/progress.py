"""Progress lines of a bench run, stamped with the seconds since it started."""

import time

__all__ = ["log"]

_T0 = time.monotonic()


def log(text: str) -> None:
    """A progress line with the seconds since the bench started."""
    print(f"[bench {time.monotonic() - _T0:6.1f}s] {text}", flush=True)
