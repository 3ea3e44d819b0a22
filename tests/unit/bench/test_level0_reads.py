"""The level-0 read bench: each state it reports is one it really reached."""

from pathlib import Path

from bench.level0_reads import measure


def test_a_load_with_compactions_off_leaves_level0_files_that_the_compactions_then_merge(
    tmp_path: Path,
) -> None:
    states = measure(15_000, tmp_path)  # about 80 MB: some 9 memtables
    assert list(states) == [
        "loaded, compactions off",
        "compactions turned on, running",
        "compacted (compactions off during the load)",
        "loaded, compactions on",
        "compacted (compactions on during the load)",
    ]
    off_files = states["loaded, compactions off"][0]
    assert off_files > 4  # one file per memtable flush, none merged
    assert states["compacted (compactions off during the load)"][0] <= 4
    assert all(p50 <= p99 for _, p50, p99 in states.values())
