"""The cells of the results table: a row, and how a value is printed."""

import math
from typing import Any

__all__ = ["fmt", "row"]


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if 0 < abs(value) < 0.1:
            return f"{value:.2g}"  # 0.0058, not 0.01 or 0.00
        return f"{value:.{digits}f}"
    return str(value)


def row(
    name: str,
    measured: Any,
    baseline: Any = None,
    ratio: float | None = None,
    target: str = "",
    ok: bool | None = None,
) -> dict[str, Any]:
    return {
        "row": name,
        "measured": measured,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "ok": ok,
    }
