"""Forged, tampered, expired and missing access tokens (CONTRACT §2): every one is a 401 with
``WWW-Authenticate: Bearer`` and does nothing.

Tokens are crafted by hand; the hub under test signs with the harness's ``JWT_SECRET``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.harness import JWT_SECRET, RunningHub, location_body, running_hub

LOCATION_PATH = "/api/v1/vehicle/wheelchair_001/location"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def claims_for(hub: RunningHub, role: str = "vehicle", **overrides: Any) -> dict[str, Any]:
    """Claims the hub itself would put in a token; ``overrides`` set or (with None) drop."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "wheelchair_001" if role == "vehicle" else "mallory",
        "role": role,
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "iss": hub.settings.jwt_issuer,
        "aud": hub.settings.jwt_audience,
    }
    if role == "vehicle":
        claims["vid"] = "wheelchair_001"
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def signed(claims: dict[str, Any], key: Any = JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    """An ``alg: none`` token: header and payload, empty signature."""
    return f"{b64url_json({'alg': alg, 'typ': 'JWT'})}.{b64url_json(claims)}."


def assert_refused(answer: httpx.Response, error: str, case: str) -> None:
    assert answer.status_code == 401, (case, answer.text)
    body = answer.json()
    assert body["error"] == error, (case, body)
    assert body["message"] and body["timestamp"]
    assert answer.headers["WWW-Authenticate"].startswith("Bearer"), case
    assert answer.headers["Content-Type"].startswith("application/json")


async def post_location(hub: RunningHub, token: str) -> httpx.Response:
    return await hub.client.post(
        LOCATION_PATH, json=location_body(), headers={"Authorization": f"Bearer {token}"}
    )


async def assert_nothing_stored(hub: RunningHub) -> None:
    history = await hub.client.get(
        "/api/v1/vehicle/wheelchair_001/locations", headers=hub.admin_headers
    )
    assert history.status_code == 200
    assert history.json()["items"] == []


# HS512 with the hub's (HS256-sized) secret is one of the forgeries; pyjwt warns about it.
@pytest.mark.filterwarnings("ignore:The HMAC key is")
async def test_tokens_not_signed_with_the_hubs_key_are_refused(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            await hub.register_vehicle("wheelchair_001")
            rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            real = jwt.encode(claims_for(hub), JWT_SECRET, algorithm="HS256")
            header, _, signature = real.split(".")
            forgeries = {
                "alg none": unsigned(claims_for(hub)),
                "alg None": unsigned(claims_for(hub), alg="None"),
                "alg NONE": unsigned(claims_for(hub), alg="NONE"),
                "none with the real signature": (
                    f"{b64url_json({'alg': 'none', 'typ': 'JWT'})}"
                    f".{b64url_json(claims_for(hub))}.{signature}"
                ),
                "HS256, wrong key": signed(claims_for(hub), "another-secret-" + "y" * 40),
                "RS256, attacker's key": signed(claims_for(hub), rsa_key, "RS256"),
                "HS512, right key": signed(claims_for(hub), JWT_SECRET, "HS512"),
                "payload swapped under a real signature": (
                    f"{header}.{b64url_json(claims_for(hub, jti='other'))}.{signature}"
                ),
            }
            for case, token in forgeries.items():
                assert_refused(await post_location(hub, token), "invalid_token", case)

            # An admin token forged the same ways opens no admin door either.
            for case, token in {
                "admin, alg none": unsigned(claims_for(hub, role="admin")),
                "admin, wrong key": signed(claims_for(hub, role="admin"), "z" * 48),
            }.items():
                answer = await hub.client.post(
                    "/api/v1/admin/vehicles",
                    json={"vehicle_id": "forged_001", "name": "forged"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert_refused(answer, "invalid_token", case)
            fleet = await hub.client.get("/api/v1/vehicles", headers=hub.admin_headers)
            assert [v["vehicle_id"] for v in fleet.json()["vehicles"]] == ["wheelchair_001"]
            await assert_nothing_stored(hub)

            # The control: the same claims, honestly signed, are accepted — so the refusals
            # above are about the signature, not about the crafting.
            assert (await post_location(hub, real)).status_code == 200


async def test_tokens_with_wrong_or_missing_claims_are_refused(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            await hub.register_vehicle("wheelchair_001")
            now = int(time.time())
            expired = signed(claims_for(hub, iat=now - 2 * 86400, exp=now - 60))
            assert_refused(await post_location(hub, expired), "token_expired", "expired")

            bad_claims = {
                "no exp": claims_for(hub, exp=None),
                "no iat": claims_for(hub, iat=None),
                "no sub": claims_for(hub, sub=None),
                "no jti": claims_for(hub, jti=None),
                "wrong audience": claims_for(hub, aud="some-other-service"),
                "no audience": claims_for(hub, aud=None),
                "wrong issuer": claims_for(hub, iss="https://evil.example"),
                "no issuer": claims_for(hub, iss=None),
                "vehicle without vid": claims_for(hub, vid=None),
                "unknown role": claims_for(hub, role="superuser"),
                "no role": claims_for(hub, role=None),
                "vid not a string": claims_for(hub, vid=["wheelchair_001"]),
            }
            for case, claims in bad_claims.items():
                assert_refused(await post_location(hub, signed(claims)), "invalid_token", case)

            people = {
                "viewer with a wrong audience": claims_for(hub, role="viewer", aud="other"),
                "viewer, expired": claims_for(hub, role="viewer", exp=now - 1),
            }
            for case, claims in people.items():
                answer = await hub.client.get(
                    "/api/v1/vehicles", headers={"Authorization": f"Bearer {signed(claims)}"}
                )
                expected = "token_expired" if "expired" in case else "invalid_token"
                assert_refused(answer, expected, case)
            await assert_nothing_stored(hub)


async def test_missing_or_malformed_authorization_headers_are_refused(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            await hub.register_vehicle("wheelchair_001")
            headers: dict[str, tuple[dict[str, str], str]] = {
                "no header": ({}, "missing_token"),
                "Basic scheme": (
                    {"Authorization": "Basic d2hlZWxjaGFpcjpzZWNyZXQ="},
                    "missing_token",
                ),
                "Bearer without token": ({"Authorization": "Bearer"}, "missing_token"),
                "token without scheme": ({"Authorization": "abc.def.ghi"}, "missing_token"),
                "garbage token": ({"Authorization": "Bearer not-a-jwt"}, "invalid_token"),
                "three garbage parts": ({"Authorization": "Bearer a.b.c"}, "invalid_token"),
                "empty parts": ({"Authorization": "Bearer .."}, "invalid_token"),
            }
            for case, (header, error) in headers.items():
                answer = await hub.client.post(LOCATION_PATH, json=location_body(), headers=header)
                assert_refused(answer, error, case)
                answer = await hub.client.get("/api/v1/vehicles", headers=header)
                assert_refused(answer, error, case)
            await assert_nothing_stored(hub)
