"""The results table: a finished scenario's rows, the rows over all scenarios, and the text."""

from bench.rows import render, table
from bench.rows.state import _memory_limit_mib


def test_a_finished_scenario_gives_its_rows_and_a_failed_one_says_so() -> None:
    results = {
        "restart": {
            "10000": {
                "records": 10_000,
                "changelog_mb": 54.0,
                "unclean_s": 7.9,
                "clean_s": 3.1,
                "ratio": 2.55,
            },
        },
        "cost": {"error": "Traceback ...\nRuntimeError: broker gone"},
    }
    text = render(table(results, None))  # type: ignore[arg-type]
    assert "restart: s to ready after kill -9, 10,000 profiles (54 MB changelog)" in text
    assert "3.10 after a clean stop" in text
    assert "cost: FAILED" in text and "RuntimeError: broker gone" in text
    assert "MISSED" in text


def test_the_memory_limit_is_read_from_the_statefulset() -> None:
    limit = _memory_limit_mib()
    assert limit is not None and limit > 0
