"""The verified-token cache (TokenCodec.verify): faster, never more permissive."""

from __future__ import annotations

import time

import pytest

from hub.errors import NotAuthenticatedError
from hub.security import TokenCodec

SECRET = "s" * 40


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def codec(clock: Clock | None = None, cache_size: int = 100) -> TokenCodec:
    return TokenCodec(
        SECRET,
        issuer="tvm-hub",
        audience="tvm",
        ttl_seconds=60,
        cache_size=cache_size,
        clock=clock or Clock(),
    )


def test_a_cached_token_still_expires() -> None:
    clock = Clock()
    tokens = codec(clock)
    token = tokens.issue(subject="wheelchair_001", role="vehicle", vehicle_id="wheelchair_001")
    assert tokens.verify(token).vehicle_id == "wheelchair_001"
    clock.now += 59
    assert tokens.verify(token).vehicle_id == "wheelchair_001"  # from the cache
    clock.now += 1
    with pytest.raises(NotAuthenticatedError) as expired:
        tokens.verify(token)
    assert expired.value.error == "token_expired"
    with pytest.raises(NotAuthenticatedError):  # and stays refused, checked in full
        tokens.verify(token)


def test_a_token_changed_by_one_character_is_checked_in_full() -> None:
    tokens = codec()
    token = tokens.issue(subject="admin", role="admin")
    tokens.verify(token)
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(NotAuthenticatedError) as refused:
        tokens.verify(tampered)
    assert refused.value.error == "invalid_token"


def test_a_token_of_another_key_is_never_answered_from_the_cache() -> None:
    ours, theirs = codec(), TokenCodec("t" * 40, issuer="tvm-hub", audience="tvm", ttl_seconds=60)
    foreign = theirs.issue(subject="admin", role="admin")
    theirs.verify(foreign)
    with pytest.raises(NotAuthenticatedError):
        ours.verify(foreign)


def test_the_cache_is_bounded() -> None:
    tokens = codec(cache_size=3)
    issued = [tokens.issue(subject=f"user{index}", role="viewer") for index in range(10)]
    for token in issued:
        tokens.verify(token)
    assert len(tokens._verified) == 3
    assert all(tokens.verify(token).role == "viewer" for token in issued)
