"""IdentityCache: made once per object, never confused by an equal object, bounded."""

from __future__ import annotations

from hub.identity_cache import IdentityCache


def test_a_value_is_made_once_per_object_and_never_for_an_equal_other() -> None:
    made: list[str] = []
    cache: IdentityCache[list[int], str] = IdentityCache(10)

    def make(key: list[int]) -> str:
        made.append(str(key))
        return f"value of {key}"

    first, equal = [1], [1]
    assert cache.get(first, make) == "value of [1]"
    assert cache.get(first, make) == "value of [1]"
    assert cache.get(equal, make) == "value of [1]"
    assert made == ["[1]", "[1]"]  # the equal list is another object: made again


def test_a_full_cache_starts_over() -> None:
    made: list[int] = []
    cache: IdentityCache[list[int], int] = IdentityCache(2)
    keys = [[0], [1], [2]]

    def make(key: list[int]) -> int:
        made.append(key[0])
        return key[0]

    for key in keys:
        cache.get(key, make)
    cache.get(keys[2], make)  # kept: added after the cache was emptied
    cache.get(keys[0], make)  # made again: it went when the cache was emptied
    assert made == [0, 1, 2, 0]
