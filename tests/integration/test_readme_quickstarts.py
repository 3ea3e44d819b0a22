"""The README's "Using it" block, run as written with the worker's defaults
(``readme.run_block``): the message sent is buffered for 60 s of quiet, the refresh extracts
it at once, and the commands after it read the profile it made."""

from pathlib import Path

import orjson

from .harness import Names
from .readme import readme_block, run_block


def test_using_it_sends_refreshes_and_reads_alices_profile(
    names: Names, tmp_path: Path, services: None
) -> None:
    run = run_block(readme_block("## Using it"), names, tmp_path / "worker")
    assert run.status == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    lines = run.stdout.splitlines()
    sent = lines[0]  # send prints the message id
    refreshed = orjson.loads(next(line for line in lines if line.startswith("{")))
    assert refreshed["profile"]["name"] == "Alice"
    assert refreshed["profile"]["location"] == "California"
    assert refreshed["freshness"]["buffered_messages"] == 0
    assert refreshed["freshness"]["last_message_id"] == sent
    assert "location: California" in run.stdout  # get, and history's value
    assert sent in run.stdout.split("{", 1)[1]  # history and show-source name the message
