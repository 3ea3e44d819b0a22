"""The README is a promise: its configuration table and commands must match the code."""

import re
from pathlib import Path

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented_and_nothing_else() -> None:
    documented = set(re.findall(r"`(PROFILE_STREAM_[A-Z0-9_]+)`", README))
    fields = {f"PROFILE_STREAM_{name.upper()}" for name in Settings.model_fields}
    fields -= {"PROFILE_STREAM_OPENAI_API_KEY", "PROFILE_STREAM_OPENAI_BASE_URL"}
    assert fields - documented == set(), "settings missing from the README table"
    assert documented - fields == set(), "README documents settings that do not exist"


def test_every_make_target_in_the_readme_exists() -> None:
    makefiles = (ROOT / "Makefile").read_text() + (ROOT / "deploy/stack.mk").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefiles, re.M))
    for target in set(re.findall(r"\bmake ([a-z][a-z-]*[a-z])", README)):
        assert target in targets, (
            f"README mentions `make {target}`, the Makefile has no such target"
        )


def test_ci_runs_exactly_make_test() -> None:
    script = (ROOT / ".ci/run").read_text()
    commands = [ln for ln in script.splitlines() if ln.strip() and not ln.startswith("#")]
    assert "make test" in commands
