import pytest

from streams.core.clean_stop import LocalStores, on_start


@pytest.mark.parametrize("marker", [True, False])
def test_without_stores_there_is_nothing_to_keep_or_wipe(marker: bool) -> None:
    assert on_start(marker=marker, stores=False) is LocalStores.NONE


def test_stores_left_by_a_clean_stop_are_kept() -> None:
    assert on_start(marker=True, stores=True) is LocalStores.KEPT


def test_stores_without_a_clean_stop_are_wiped() -> None:
    assert on_start(marker=False, stores=True) is LocalStores.WIPED
