"""Starting and stopping the stack-ceiling server (:mod:`.ceiling_app`) for a run."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from hub.security import TokenCodec
from scripts.bench_common import free_port
from scripts.capacity.ceiling_app import SECRET_ENV, codec_from
from scripts.capacity.plan import Credential

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class CeilingHandle:
    """A running ceiling server: where, its pid, and the codec that signs its tokens."""

    url: str
    port: int
    pid: int
    codec: TokenCodec

    def credentials(self, vehicle_ids: list[str]) -> list[Credential]:
        """Tokens the ceiling accepts, for ``vehicle_ids`` (no registration needed)."""
        return [
            Credential(
                vehicle_id,
                self.codec.issue(subject=vehicle_id, role="vehicle", vehicle_id=vehicle_id),
            )
            for vehicle_id in vehicle_ids
        ]


@contextmanager
def ceiling_server() -> Iterator[CeilingHandle]:
    """Run the ceiling app in a subprocess on a free port until the block ends.

    Blocks until it answers ``/health`` (at most 30 s, else ``SystemExit``); on exit it gets
    SIGTERM, then SIGKILL after 10 s.
    """
    secret = secrets.token_urlsafe(48)
    port = free_port()
    command = [sys.executable, "-m", "scripts.capacity.ceiling_app", "--port", str(port)]
    process = subprocess.Popen(command, env={**os.environ, SECRET_ENV: secret})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"ceiling server exited with code {process.returncode}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit(f"ceiling server did not answer in {READY_TIMEOUT:.0f} s")
        yield CeilingHandle(url=url, port=port, pid=process.pid, codec=codec_from(secret))
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
