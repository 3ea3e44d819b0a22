"""What the command-line tests share: click's runner over a clean environment."""

import pytest
from click.testing import CliRunner


@pytest.fixture
def runner(clean_env: pytest.MonkeyPatch) -> CliRunner:
    return CliRunner()
