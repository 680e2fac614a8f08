"""Request ids: the client's ``X-Request-ID`` when it is sane, else a fresh one (CONTRACT §1)."""

from __future__ import annotations

import re
import uuid

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_from(offered: str | None) -> str:
    """``offered`` if it is 1–128 of ``[A-Za-z0-9._:-]``, else a new random id."""
    if offered and _SANE_REQUEST_ID.match(offered):
        return offered
    return uuid.uuid4().hex
