"""Credentials: where they come from, how IAM tokens are obtained and refreshed.

Looked for in this order: explicit arguments, ``YC_API_KEY``, ``YC_IAM_TOKEN``,
``YC_OAUTH_TOKEN`` (exchanged for an IAM token), ``YC_SERVICE_ACCOUNT_KEY_FILE`` (a signed
PS256 JWT exchanged for an IAM token), the ``yc`` CLI, and the metadata service only when
enabled. Every secret is registered with :mod:`.redact` and never shown in a repr.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from ..core.config import DEFAULT_IAM_URL
from ..core.errors import TRY_WITHOUT_ACCOUNT, AuthenticationError, ConfigurationError, CredentialsNotFoundError
from ..core.redact import get_logger, mask, register_secret
from .transport import Delivery, Exchange, Response, RetryableError, RetryPolicy, send

log = get_logger("yart_jupyter.clients.credentials")

METADATA_ADDR = "169.254.169.254"
METADATA_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
#: Refresh an IAM token after this many seconds even if it would live longer (tokens live 12 h).
REFRESH_AFTER = 3600.0
#: ... and at the latest this long before it expires.
REFRESH_MARGIN = 300.0

HOW_TO_PROVIDE = (
    "No Yandex Cloud credentials found. Provide one of: "
    "api_key= or iam_token= arguments of YandexArtClient; "
    "YC_API_KEY (a service-account API key); "
    "YC_IAM_TOKEN (an IAM token, e.g. from `yc iam create-token`); "
    "YC_OAUTH_TOKEN (a Yandex OAuth token, exchanged for IAM tokens); "
    "YC_SERVICE_ACCOUNT_KEY_FILE (an authorized key JSON from `yc iam key create`); "
    "the `yc` CLI on PATH, logged in; "
    "or YC_METADATA_ADDR / metadata=True inside a Yandex Cloud VM. "
    "Also set YC_FOLDER_ID. To try without an account: " + TRY_WITHOUT_ACCOUNT
)


class Credentials(ABC):
    """A source of the Authorization header."""

    #: A short name of the kind, e.g. "API key".
    kind: str = "credentials"
    #: IAM tokens of users need ``x-folder-id``; a service account's API key does not.
    sends_folder_header: bool = True
    #: Whether a 401 is worth one refresh.
    refreshable: bool = False

    def __init__(self, source: str) -> None:
        self.source = source

    @abstractmethod
    async def authorization(self, session: aiohttp.ClientSession, refresh: bool = False) -> str:
        """The Authorization header value; ``refresh`` forces a new token where that means anything."""

    def describe(self) -> str:
        """A line for humans, never containing the secret."""
        return f"{self.kind} from {self.source}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.describe()}>"


class ApiKey(Credentials):
    """A service-account API key: ``Authorization: Api-Key ...``."""

    kind = "API key"
    sends_folder_header = False

    def __init__(self, key: str, source: str = "argument") -> None:
        super().__init__(source)
        register_secret(key)
        self._key = key

    async def authorization(self, session: aiohttp.ClientSession, refresh: bool = False) -> str:
        return f"Api-Key {self._key}"

    def describe(self) -> str:
        return f"{self.kind} {mask(self._key)} from {self.source}"


class IamToken(Credentials):
    """A fixed IAM token: ``Authorization: Bearer ...``; it cannot be refreshed."""

    kind = "IAM token"

    def __init__(self, token: str, source: str = "argument") -> None:
        super().__init__(source)
        register_secret(token)
        self._token = token

    async def authorization(self, session: aiohttp.ClientSession, refresh: bool = False) -> str:
        return f"Bearer {self._token}"

    def describe(self) -> str:
        return f"{self.kind} {mask(self._token)} from {self.source}"


class ExchangedToken(Credentials):
    """An IAM token obtained from something else, cached and refreshed before it expires."""

    kind = "IAM token"
    refreshable = True

    def __init__(self, source: str, *, retry: RetryPolicy | None = None, timeout: float = 30.0) -> None:
        super().__init__(source)
        self._token: str | None = None
        self._obtained = 0.0
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._retry = retry or RetryPolicy(max_attempts=4, max_elapsed=30.0)
        self._timeout = timeout

    def _fresh(self) -> bool:
        now = time.time()
        return (
            self._token is not None
            and now - self._obtained < REFRESH_AFTER
            and now < self._expires - REFRESH_MARGIN
        )

    async def authorization(self, session: aiohttp.ClientSession, refresh: bool = False) -> str:
        stale = self._token
        async with self._lock:
            if refresh and self._token == stale:
                self._token = None
            if not self._fresh():
                token, expires = await self._fetch(session)
                register_secret(token)
                self._token, self._obtained, self._expires = token, time.time(), expires
                log.debug("obtained an IAM token from %s, valid %.0f s", self.source, expires - time.time())
            assert self._token is not None
            return f"Bearer {self._token}"

    @abstractmethod
    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        """Get a new token: (token, expiry as a Unix time)."""

    async def _exchange(
        self, session: aiohttp.ClientSession, url: str, payload: dict[str, Any]
    ) -> tuple[str, float]:
        """POST to the IAM tokens endpoint and read ``iamToken`` and ``expiresAt``."""

        async def check(response: Response) -> None:
            try:
                data = response.json()
                _ = data["iamToken"]
            except (ValueError, KeyError, TypeError):
                raise RetryableError("malformed token response") from None

        try:
            response = await send(session, Exchange("POST", url, json_body=payload, timeout=self._timeout, check=check),
                                  Delivery(retry=self._retry))
        except AuthenticationError as exc:
            exc.message = f"The token exchange with {self.source} was refused: {exc.message}"
            raise
        data = response.json()
        token = str(data["iamToken"])
        return token, _parse_expiry(data.get("expiresAt"))

    def describe(self) -> str:
        return f"IAM tokens from {self.source}"


class OAuthToken(ExchangedToken):
    """A Yandex OAuth token, exchanged for IAM tokens."""

    def __init__(self, oauth_token: str, iam_url: str = DEFAULT_IAM_URL, source: str = "argument") -> None:
        super().__init__(f"an OAuth token ({source})")
        register_secret(oauth_token)
        self._oauth = oauth_token
        self._url = iam_url

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        return await self._exchange(session, self._url, {"yandexPassportOauthToken": self._oauth})


class ServiceAccountKey(ExchangedToken):
    """A service-account authorized key: a PS256 JWT exchanged for IAM tokens."""

    def __init__(self, key: Mapping[str, Any], iam_url: str = DEFAULT_IAM_URL, source: str = "argument") -> None:
        try:
            self.key_id = str(key["id"])
            self.service_account_id = str(key["service_account_id"])
            private_key = str(key["private_key"])
        except (KeyError, TypeError):
            raise ConfigurationError(
                f"The service-account key from {source} lacks id, service_account_id or private_key"
            ) from None
        super().__init__(f"service-account key {self.key_id} ({source})")
        start = private_key.find("-----BEGIN")
        self._private_key = private_key[start:] if start >= 0 else private_key
        register_secret(self._private_key)
        self._url = iam_url

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], iam_url: str = DEFAULT_IAM_URL) -> ServiceAccountKey:
        try:
            key = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"Cannot read the service-account key file {path}: {exc}") from None
        return cls(key, iam_url, source=str(path))

    def make_jwt(self, now: float | None = None) -> str:
        """The signed PS256 JWT the IAM tokens endpoint expects (lifetime one hour)."""
        try:
            import jwt
        except ImportError:
            raise ConfigurationError(
                "Service-account keys need PyJWT and cryptography: pip install 'yart_jupyter[sa]'"
            ) from None
        issued = int(now if now is not None else time.time())
        payload = {
            "aud": DEFAULT_IAM_URL,
            "iss": self.service_account_id,
            "iat": issued,
            "exp": issued + 3600,
        }
        return str(jwt.encode(payload, self._private_key, algorithm="PS256", headers={"kid": self.key_id}))

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        return await self._exchange(session, self._url, {"jwt": self.make_jwt()})


class YcCli(ExchangedToken):
    """``yc iam create-token`` from the installed Yandex Cloud CLI."""

    def __init__(self, executable: str) -> None:
        super().__init__("the yc CLI")
        self._exe = executable

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        proc = await asyncio.create_subprocess_exec(
            self._exe, "iam", "create-token",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
        except asyncio.TimeoutError:
            proc.kill()
            raise AuthenticationError("`yc iam create-token` did not answer within 30 s") from None
        token = out.decode().strip()
        if proc.returncode != 0 or not token:
            first = (err.decode(errors="replace").strip().splitlines() or ["no output"])[0]
            raise AuthenticationError(f"`yc iam create-token` failed: {first}")
        return token, time.time() + 12 * 3600


class Metadata(ExchangedToken):
    """The compute metadata service of a Yandex Cloud VM; used only when asked for."""

    def __init__(self, address: str = METADATA_ADDR) -> None:
        super().__init__(f"the metadata service at {address}")
        self._url = f"http://{address}{METADATA_PATH}"

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        response = await send(session, Exchange("GET", self._url, headers={"Metadata-Flavor": "Google"}, timeout=5.0),
                              Delivery(retry=RetryPolicy(max_attempts=2, max_elapsed=10.0)))
        try:
            data = response.json()
            token = str(data["access_token"])
        except (ValueError, KeyError, TypeError):
            raise AuthenticationError("The metadata service gave no access_token") from None
        return token, time.time() + float(data.get("expires_in", 3600))


def resolve_credentials(
    *,
    api_key: str | None = None,
    iam_token: str | None = None,
    oauth_token: str | None = None,
    service_account_key_file: str | None = None,
    metadata: bool | None = None,
    iam_url: str = DEFAULT_IAM_URL,
    env: Mapping[str, str] | None = None,
) -> Credentials:
    """The first credentials found, in the documented order; else one error listing every way."""
    env = os.environ if env is None else env
    if api_key:
        return ApiKey(api_key)
    if iam_token:
        return IamToken(iam_token)
    if oauth_token:
        return OAuthToken(oauth_token, iam_url)
    if service_account_key_file:
        return ServiceAccountKey.from_file(service_account_key_file, iam_url)
    if env.get("YC_API_KEY"):
        return ApiKey(env["YC_API_KEY"], "YC_API_KEY")
    if env.get("YC_IAM_TOKEN"):
        return IamToken(env["YC_IAM_TOKEN"], "YC_IAM_TOKEN")
    if env.get("YC_OAUTH_TOKEN"):
        return OAuthToken(env["YC_OAUTH_TOKEN"], iam_url, "YC_OAUTH_TOKEN")
    if env.get("YC_SERVICE_ACCOUNT_KEY_FILE"):
        return ServiceAccountKey.from_file(env["YC_SERVICE_ACCOUNT_KEY_FILE"], iam_url)
    yc = shutil.which("yc", path=env.get("PATH"))
    if yc:
        return YcCli(yc)
    if metadata or env.get("YC_METADATA_ADDR"):
        return Metadata(env.get("YC_METADATA_ADDR") or METADATA_ADDR)
    raise CredentialsNotFoundError(HOW_TO_PROVIDE)


def _parse_expiry(value: Any) -> float:
    """``expiresAt`` (RFC 3339) as a Unix time; twelve hours from now when absent."""
    if isinstance(value, str):
        text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            pass
    return time.time() + 12 * 3600
