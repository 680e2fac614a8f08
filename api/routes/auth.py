"""Token endpoints (CONTRACT §2): client credentials, passwords, refresh rotation."""

from __future__ import annotations

from quart import Quart, Response, request
from quart_schema import document_request, document_response, security_scheme, tag

from api.context import HubServices
from api.request_body import json_body
from api.responses import json_response
from hub.contract import auth as auth_models
from hub.contract import responses
from hub.contract.auth_forms import LoginBody
from hub.contract.validation import parse_model


def register(app: Quart, services: HubServices) -> None:
    """Add ``/api/v1/auth/token`` and ``/api/v1/auth/refresh``."""

    @tag(["auth"])
    @security_scheme([])
    @document_request(LoginBody)
    @document_response(auth_models.TokenResponse, 200)
    @document_response(auth_models.OAuthErrorBody, 401)
    @document_response(responses.ErrorBody, 429)
    async def issue_token() -> Response:
        """Log in: a vehicle with client credentials, a person with a password.

        A vehicle sends `client_id` and `client_secret` (`grant_type` may be left out); a
        person sends `grant_type: password`, `username` and `password`. The answer holds a
        24 h access token and a 30-day refresh token.
        """
        body = parse_model(auth_models.TokenRequest, await json_body())
        address = request.remote_addr or "unknown"
        if body.grant_type == "password":
            assert body.username is not None and body.password is not None
            tokens = await services.accounts.login_user(body.username, body.password, address)
        else:
            assert body.client_id is not None and body.client_secret is not None
            tokens = await services.accounts.login_vehicle(
                body.client_id, body.client_secret, address
            )
        return json_response(tokens, headers={"Cache-Control": "no-store"})

    @tag(["auth"])
    @security_scheme([])
    @document_request(auth_models.RefreshRequest)
    @document_response(auth_models.TokenResponse, 200)
    @document_response(auth_models.OAuthErrorBody, 401)
    async def refresh_token() -> Response:
        """Trade a refresh token for new tokens; the old refresh token stops working.

        The answer is a new access token and a new refresh token, like a login's.
        """
        body = parse_model(auth_models.RefreshRequest, await json_body())
        tokens = await services.accounts.refresh(body.refresh_token)
        return json_response(tokens, headers={"Cache-Control": "no-store"})

    app.add_url_rule("/api/v1/auth/token", view_func=issue_token, methods=["POST"])
    app.add_url_rule("/api/v1/auth/refresh", view_func=refresh_token, methods=["POST"])
