"""Languages are stored in one spelling from a documented list; anything else is refused."""

import pytest

from streams.core.profile_schema import load_profile_schema

LANGS = load_profile_schema("schemas.profile:UserProfile").fields["languages"]


@pytest.mark.parametrize(
    "given, stored",
    [
        ("Spanish", "Spanish"),
        ("spanish", "Spanish"),
        (" es ", "Spanish"),
        ("zh", "Chinese"),
        ("Mandarin", "Mandarin"),
    ],
)
def test_names_and_codes_store_in_one_spelling(given: str, stored: str) -> None:
    assert LANGS.check_item(given) == stored


@pytest.mark.parametrize("given", ["Spanglish", "Pacific", "", "Klingon"])
def test_unknown_languages_are_refused_with_a_hint(given: str) -> None:
    with pytest.raises(ValueError, match="schemas.languages"):
        LANGS.check_item(given)
