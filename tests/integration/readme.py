"""The README's quickstart blocks, run as written: the bash block under a heading, in one shell,
from the repository's root, with the worker's default settings.

What a test changes, and only that, so that runs on a shared machine do not meet: ``make up``
is left out (the stack runs already: the tests never restart it); the topics, app id and data
dir are this test's (``Names``), and the web port a free one, given to the block's commands as
``PROFILE_STREAM_WEB_PORT`` and written for ``6066`` in the block's text. Every other setting
is the README's own: its ``export`` lines, else the worker's defaults (the rules extractor, a
flush after 60 s of quiet).
"""

import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import Names, clean_environ, free_port

from .harness import BOOTSTRAP, REDIS_URL

__all__ = ["ROOT", "ReadmeRun", "readme_block", "run_block"]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
_DEFAULT_PORT = "6066"


def readme_block(heading: str) -> str:
    """The first ```` ```bash ```` block after the README heading ``heading``."""
    text = README.read_text()
    start = text.index(f"\n{heading}\n")
    found = re.search(r"```bash\n(.*?)```", text[start:], flags=re.S)
    assert found is not None, f"no bash block under {heading!r}"
    return found.group(1)


@dataclass
class ReadmeRun:
    """How a block's run ended: its exit status, stdout and stderr, and the port it used."""

    status: int
    stdout: str
    stderr: str
    port: int


def run_block(block: str, names: Names, data_dir: Path, timeout_s: float = 240.0) -> ReadmeRun:
    """Run ``block`` (without ``make up``) in one bash, as a user would paste it."""
    port = free_port()
    script = "\n".join(
        line.replace(f"localhost:{_DEFAULT_PORT}", f"localhost:{port}")
        for line in block.splitlines()
        if line.split("#")[0].strip() != "make up"
    )
    env = clean_environ() | {
        "PROFILE_STREAM_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "PROFILE_STREAM_REDIS_URL": REDIS_URL,
        "PROFILE_STREAM_WEB_PORT": str(port),
        "PROFILE_STREAM_DATA_DIR": str(data_dir),
        "PROFILE_STREAM_APP_ID": names.prefix,
        "PROFILE_STREAM_INPUT_TOPIC": names.input,
        "PROFILE_STREAM_OUTPUT_TOPIC": names.output,
        "PROFILE_STREAM_DLQ_TOPIC": names.dlq,
        "PROFILE_STREAM_PARTITIONS": str(names.partitions),
    }
    proc = subprocess.Popen(  # noqa: S603
        ["bash", "-e", "-c", script],  # noqa: S607
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a failed block's worker is killed with it
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as late:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        tail = f"{stdout}\n{stderr[-3000:]}"
        raise AssertionError(f"the block still ran after {timeout_s}s:\n{tail}") from late
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever the block left running
        except ProcessLookupError:
            pass
    return ReadmeRun(proc.returncode, stdout, stderr, port)
