from __future__ import annotations

import pytest

from cyme import names
from cyme.errors import InvalidRequest


@pytest.mark.parametrize("name", ["foo", "Foo-1", "a.b_c", "x" * 64, "0abc"])
def test_good_names_pass(name: str) -> None:
    assert names.app_name(name) == name
    assert names.instance_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "../x", "..", "a/b", "a\\b", "a\x00b", "a\nb", "x" * 65, ".hidden", "-x", "a b", None, 5]
)
def test_bad_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidRequest):
        names.app_name(name)
    with pytest.raises(InvalidRequest):
        names.instance_name(name)


@pytest.mark.parametrize("word", ["admin", "branches", "ping", "query", "queue", "instances", "API"])
def test_reserved_words_cannot_name_an_app_but_can_name_an_instance(word: str) -> None:
    with pytest.raises(InvalidRequest, match="reserved"):
        names.app_name(word)
    assert names.instance_name(word) == word
