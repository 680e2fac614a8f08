"""TLS 1.2+ from TLS_CERT_FILE/TLS_KEY_FILE, 308 from plain HTTP, plain ws:// refused, and
CORS only for configured origins (TVM-SEC-001/002/005), with certificates made by trustme.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
import trustme
from trio_websocket import ConnectionRejected, HandshakeError, open_websocket_url

from tests.integration.harness import location_body, running_hub

ALLOWED_ORIGIN = "https://fleet.example.org"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def certificate(tmp_path: Path) -> Iterator[tuple[trustme.CA, Path, Path]]:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    yield ca, cert_file, key_file


def _client_context(ca: trustme.CA, *, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if maximum is not None:
        # Let the client really offer the old protocol, so the refusal is the server's.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = maximum
    return context


async def test_https_serves_and_plain_http_is_redirected_with_308(
    database_url: str, certificate: tuple[trustme.CA, Path, Path]
) -> None:
    ca, cert_file, key_file = certificate
    tls_port, plain_port = _free_port(), _free_port()
    with trio.fail_after(90):
        async with running_hub(
            database_url,
            tls_cert_file=cert_file,
            tls_key_file=key_file,
            port=tls_port,
            http_redirect_port=plain_port,
            admin_client_verify=ca,
        ) as hub:
            assert hub.base_url == f"https://127.0.0.1:{tls_port}"
            vehicle = await hub.register_vehicle("wheelchair_001")
            answer = await hub.post(vehicle, "location", location_body())
            assert answer.status_code == 200

            async with httpx.AsyncClient() as plain:
                redirected = await plain.get(
                    f"http://127.0.0.1:{plain_port}/api/v1/vehicles?limit=5",
                    follow_redirects=False,
                )
            assert redirected.status_code == 308
            assert redirected.headers["location"] == (
                f"https://127.0.0.1:{tls_port}/api/v1/vehicles?limit=5"
            )

            with pytest.raises((ConnectionRejected, HandshakeError, OSError)):
                async with open_websocket_url(
                    f"ws://127.0.0.1:{plain_port}/ws/v1/vehicle/wheelchair_001?token={vehicle.token}"
                ) as plain_socket:
                    await plain_socket.get_message()

            secure_context = _client_context(ca)
            async with open_websocket_url(
                f"wss://127.0.0.1:{tls_port}/ws/v1/vehicle/wheelchair_001?token={vehicle.token}",
                ssl_context=secure_context,
            ) as secure_socket:
                assert '"welcome"' in await secure_socket.get_message()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
async def test_tls_below_1_2_is_refused(
    database_url: str, certificate: tuple[trustme.CA, Path, Path]
) -> None:
    ca, cert_file, key_file = certificate
    with trio.fail_after(90):
        async with running_hub(
            database_url,
            tls_cert_file=cert_file,
            tls_key_file=key_file,
            port=_free_port(),
            admin_client_verify=ca,
        ) as hub:
            old_context = _client_context(ca, maximum=ssl.TLSVersion.TLSv1_1)
            async with httpx.AsyncClient(verify=old_context) as old_client:
                with pytest.raises(httpx.ConnectError):
                    await old_client.get(f"{hub.base_url}/health/live")
            modern = _client_context(ca, maximum=ssl.TLSVersion.TLSv1_2)
            async with httpx.AsyncClient(verify=modern) as tls12_client:
                assert (await tls12_client.get(f"{hub.base_url}/health/live")).status_code == 200


async def test_cors_answers_only_configured_origins(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url, cors_origins=(ALLOWED_ORIGIN,)) as hub:
            preflight = await hub.client.options(
                "/api/v1/vehicles",
                headers={
                    "Origin": ALLOWED_ORIGIN,
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "Authorization",
                },
            )
            assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
            assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
            assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]

            allowed = await hub.client.get(
                "/api/v1/vehicles", headers={**hub.admin_headers, "Origin": ALLOWED_ORIGIN}
            )
            assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN

            other = await hub.client.get(
                "/api/v1/vehicles", headers={**hub.admin_headers, "Origin": "https://evil.example"}
            )
            assert other.status_code == 200
            assert "Access-Control-Allow-Origin" not in other.headers
