"""One authenticated HTTP session to one endpoint: opened once, even by concurrent first callers.

It resolves where to talk to (the real service, a URL, or the embedded emulator) and with which
credentials, holds the aiohttp session, and sends requests through the retrying transport within
the folder's quotas. It knows nothing of generations or of IPython.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace

import aiohttp

from .._version import __version__
from ..core import errors
from ..core.config import EMULATOR, Settings
from ..core.models import Api
from .credentials import ApiKey, Credentials, resolve_credentials
from .endpoints import start_local
from .limits import Ledger, QuotaLimiters, Quotas, limiters_for
from .transport import Delivery, Exchange, Response, RetryPolicy, send

USER_AGENT = f"yart_jupyter/{__version__} (+aiohttp/{aiohttp.__version__})"


class Connection:
    """The endpoint, credentials and HTTP session of a client; reopened after :meth:`close`."""

    def __init__(
        self,
        settings: Settings,
        *,
        credentials: Credentials | None = None,
        api_key: str | None = None,
        iam_token: str | None = None,
        env: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.quotas = quotas or Quotas(settings.generations_per_minute, settings.reads_per_second)
        self.folder_id = settings.folder
        self._explicit = credentials
        self._api_key = api_key
        self._iam_token = iam_token
        self._env = env
        self.credentials: Credentials | None = None
        self.session: aiohttp.ClientSession | None = None
        self._resolved_url: str | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        #: The folder's quota as others spend it too (a team store's ledger); None: this process alone.
        self.ledger: Ledger | None = None

    @property
    def base_url(self) -> str:
        return self._resolved_url or self.settings.base_url

    @property
    def images_url(self) -> str:
        """The Images API's base URL (the emulator serves both APIs)."""
        if self.settings.base_url == EMULATOR:
            return self.base_url
        return self.settings.images_base

    @property
    def is_open(self) -> bool:
        return self.session is not None and not self.session.closed

    def _open_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def open(self) -> None:
        """Resolve the endpoint and credentials and open the session; concurrent callers share one."""
        async with self._open_lock():
            if self.is_open:
                return
            self._resolved_url, self.credentials = await self._resolve()
            self.session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        """Close the session (idempotent)."""
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    async def _resolve(self) -> tuple[str, Credentials]:
        if self.settings.base_url == EMULATOR:
            url, key = await asyncio.to_thread(start_local, EMULATOR)
            credentials = self._explicit or (
                resolve_credentials(api_key=self._api_key, iam_token=self._iam_token, env={})
                if self._api_key or self._iam_token
                else ApiKey(key, "the embedded emulator")
            )
            return url, credentials
        credentials = self._explicit or resolve_credentials(
            api_key=self._api_key, iam_token=self._iam_token, iam_url=self.settings.iam_url, env=self._env
        )
        return self.settings.base_url.rstrip("/"), credentials

    def limiters(self) -> QuotaLimiters:
        """The quota limiters shared by every client of this endpoint and folder on this loop."""
        return limiters_for(self.base_url, self.folder_id, self.quotas, self.ledger)

    def _headers(self, api: Api) -> dict[str, str]:
        headers = {}
        if self.folder_id and api == "images":  # the OpenAI-compatible API names the folder as the project
            headers["OpenAI-Project"] = self.folder_id
            headers["x-folder-id"] = self.folder_id
        elif self.folder_id and self.credentials and self.credentials.sends_folder_header:
            headers["x-folder-id"] = self.folder_id
        if self.settings.data_logging is not None:
            headers["x-data-logging-enabled"] = "true" if self.settings.data_logging else "false"
        return headers

    def require_session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            raise errors.ConfigurationError(
                "The client is not open: use `async with YandexArtClient(...) as client:`"
            )
        return self.session

    async def send(self, exchange: Exchange, delivery: Delivery | None = None, *,
                   api: Api = "operations") -> Response:
        """One API request (``exchange.url`` is a path on the host of ``api``: the Images API's, or the
        operations API's) with this connection's credentials, retry policy and request timeout."""
        session = self.require_session()
        credentials = self.credentials
        assert credentials is not None

        async def auth(refresh: bool) -> str:
            return await credentials.authorization(session, refresh)

        base = self.images_url if api == "images" else self.base_url
        full = replace(exchange, url=f"{base}{exchange.url}", headers={**self._headers(api), **exchange.headers},
                       timeout=exchange.timeout or self.settings.request_timeout)
        return await send(session, full, replace(delivery or Delivery(), auth=auth, refreshable=credentials.refreshable,
                                                 retry=self.retry))


