"""constraints.txt, the worker's lock: exactly the packages that pyproject.toml's requirements,
and the extras ``make install`` adds (``EXTRAS`` in the Makefile), pull in, each at a version its
requirement accepts; and every way the worker is installed (``make install``, so CI;
deploy/Dockerfile) installs with it."""

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]
MAKEFILE = (ROOT / "Makefile").read_text()
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = re.findall(r"^EXTRAS := (\S+)$", MAKEFILE, re.M)[0].split(",")
EXTRA_REQUIREMENTS = [r for e in EXTRAS for r in PROJECT["optional-dependencies"][e]]
REQUIREMENTS = [Requirement(r) for r in [*PROJECT["dependencies"], *EXTRA_REQUIREMENTS]]
RELOCK = "run `make lock` and commit constraints.txt"


def _lock() -> dict[str, Version]:
    lines = [ln.strip() for ln in (ROOT / "constraints.txt").read_text().splitlines()]
    pins = [ln.split("==") for ln in lines if ln and not ln.startswith("#")]
    assert all(len(p) == 2 for p in pins), "constraints.txt holds name==version lines only"
    names = [canonicalize_name(name) for name, _ in pins]
    assert len(names) == len(set(names)), "a package is locked twice"
    return {canonicalize_name(name): Version(version) for name, version in pins}


def _closure() -> set[str]:
    """Every distribution the requirements pull in, extras followed (as installed here)."""
    found: set[str] = set()
    todo = [(r.name, set(r.extras)) for r in REQUIREMENTS]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in found and not extras:
            continue
        found.add(key)
        for text in metadata.requires(name) or []:
            sub = Requirement(text)
            wanted = sub.marker is None or any(
                sub.marker.evaluate({"extra": extra}) for extra in extras | {""}
            )
            if wanted:
                todo.append((sub.name, set(sub.extras)))
    return found


def test_every_requirement_is_locked_at_a_version_it_accepts() -> None:
    lock = _lock()
    for requirement in REQUIREMENTS:
        locked = lock.get(canonicalize_name(requirement.name))
        assert locked is not None, f"{requirement.name} is not in constraints.txt; {RELOCK}"
        assert requirement.specifier.contains(locked, prereleases=True), (
            f"constraints.txt locks {requirement.name} {locked}, outside {requirement}; {RELOCK}"
        )


def test_the_lock_is_what_the_requirements_pull_in_nothing_more_or_less() -> None:
    lock, closure = set(_lock()), _closure()
    assert closure - lock == set(), f"not locked: {sorted(closure - lock)}; {RELOCK}"
    assert lock - closure == set(), f"locked but not required: {sorted(lock - closure)}; {RELOCK}"


def test_faust_and_the_libraries_it_breaks_with_are_pinned_exactly_in_pyproject() -> None:
    pinned = {
        canonicalize_name(r.name): str(r.specifier)
        for r in REQUIREMENTS
        if str(r.specifier).startswith("==")
    }
    lock = _lock()
    for name in ("faust-streaming", "aiokafka", "mode-streaming"):
        assert name in pinned, f"{name} must be pinned with == in pyproject.toml"
        assert Version(pinned[name].removeprefix("==")) == lock[name]


def test_make_install_and_the_dockerfile_install_with_the_lock() -> None:
    assert re.search(r"^\$\(STAMP\): .*\bconstraints\.txt\b", MAKEFILE, re.M), (
        "a new lock must reinstall"
    )
    assert "pip install -q -c constraints.txt -e '.[$(EXTRAS)]'" in MAKEFILE
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install -c constraints\.txt \. ", dockerfile, re.M)
    assert re.search(r"^COPY .*\bconstraints\.txt\b", dockerfile, re.M)
