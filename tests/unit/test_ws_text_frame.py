"""api.ws_send.text_frame writes exactly the bytes wsproto's server side writes, at every
length boundary of RFC 6455 §5.2, and the shared cache gives each text object its own frame."""

from __future__ import annotations

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from api.ws_send import shared_text_frame, text_frame


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65_535, 65_536, 300_000])
def test_a_frame_is_what_wsproto_would_send(length: int) -> None:
    text = "x" * length
    server = Connection(ConnectionType.SERVER)
    assert text_frame(text) == bytes(server.send(TextMessage(data=text)))


def test_the_length_counts_bytes_not_characters() -> None:
    text = "Überführung → ok" * 9  # 153 characters, more bytes in UTF-8
    server = Connection(ConnectionType.SERVER)
    assert text_frame(text) == bytes(server.send(TextMessage(data=text)))


def test_equal_texts_that_are_different_objects_each_get_their_own_frame() -> None:
    first = "".join(["a", "b"])
    second = "".join(["a", "c"])
    assert shared_text_frame(first) == text_frame("ab")
    assert shared_text_frame(second) == text_frame("ac")
    assert shared_text_frame(first) is shared_text_frame(first)  # built once


def test_a_big_text_is_framed_but_not_kept() -> None:
    big = "y" * 300_000  # a whole-fleet snapshot is one session's own
    assert shared_text_frame(big) == text_frame(big)
    assert shared_text_frame(big) is not shared_text_frame(big)
