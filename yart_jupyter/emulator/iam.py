"""The emulator's credentials: API keys and IAM tokens it accepts, its token and metadata endpoints."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from .config import EmulatorConfig
from .shapes import ApiError, ids, rfc3339


class Iam:
    """Which Authorization headers pass, and the IAM token exchange (OAuth token or signed JWT)."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        #: Tokens issued by the exchange, with their expiry (Unix time).
        self.issued: dict[str, float] = {}

    def issue_token(self, ttl: float | None = None) -> str:
        """A fresh IAM token the emulator accepts until it expires."""
        token = "t1.emu." + secrets.token_urlsafe(24)
        self.issued[token] = time.time() + (self.config.iam_token_ttl if ttl is None else ttl)
        return token

    def authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme == "Api-Key" and value in self.config.api_keys:
            return
        if scheme == "Bearer":
            if value in self.config.iam_tokens:
                return
            expiry = self.issued.get(value)
            if expiry is not None and expiry > time.time():
                return
            if expiry is not None:
                raise ApiError(401, "The token has expired")
        if not header:
            raise ApiError(401, "Unauthenticated: no Authorization header")
        raise ApiError(401, "Unknown api key or IAM token")

    async def tokens(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object")
        if "yandexPassportOauthToken" in body:
            if body["yandexPassportOauthToken"] not in self.config.oauth_tokens:
                raise ApiError(401, "The OAuth token is invalid or expired")
        elif "jwt" in body:
            self.check_jwt(str(body["jwt"]))
        else:
            raise ApiError(400, "Either yandexPassportOauthToken or jwt is required")
        token = self.issue_token()
        return web.json_response(
            {"iamToken": token, "expiresAt": rfc3339(self.issued[token])}, headers=ids()
        )

    def check_jwt(self, token: str) -> None:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise ApiError(400, "The JWT is malformed") from None
        public = self.config.service_account_keys.get(str(header.get("kid")))
        if header.get("alg") != "PS256" or public is None:
            raise ApiError(401, "Unknown key id or wrong algorithm (PS256 is required)")
        try:
            jwt.decode(token, public, algorithms=["PS256"],
                       audience="https://iam.api.cloud.yandex.net/iam/v1/tokens")
        except jwt.PyJWTError as exc:
            raise ApiError(401, f"The JWT is invalid: {exc}") from None

    async def metadata(self, request: web.Request) -> web.Response:
        if request.headers.get("Metadata-Flavor") != "Google":
            raise ApiError(403, "Metadata-Flavor: Google header is required")
        token = self.issue_token()
        ttl = int(self.issued[token] - time.time())
        return web.json_response({"access_token": token, "expires_in": ttl, "token_type": "Bearer"})
