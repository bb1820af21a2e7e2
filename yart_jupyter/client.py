"""The async YandexART client: start a generation, poll its operation, return the image.

It knows nothing of IPython: the magic, the widget and the Python API all sit on top of it.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import aiohttp

from . import errors
from ._version import __version__
from .config import EMULATOR, GENERATE_PATH, Settings, check_url
from .credentials import ApiKey, Credentials, resolve_credentials
from .image import GeneratedImage, sniff_mime
from .limits import QuotaLimiters, Quotas, SlidingWindowLimiter, limiters_for
from .operation import MalformedOperation, Operation, read_operation
from .polling import PollPolicy
from .redact import get_logger
from .request import AspectRatioLike, GenerationRequest, PromptLike, build_request
from .scheduler import DURATIONS, AdaptivePolicy, scheduler
from .transport import Response, RetryableError, RetryPolicy, error_for, send

log = get_logger("yart_jupyter.client")

USER_AGENT = f"yart_jupyter/{__version__} (+aiohttp/{aiohttp.__version__})"
#: How long an interrupted caller still waits for a start request already sent, to learn its id.
START_GRACE = 1.0


@dataclass(frozen=True)
class Progress:
    """What a waiting caller may show: one event of a generation's life."""

    phase: str  # "starting", "started", "polling", "retry", "done", "failed"
    operation_id: str | None
    elapsed: float
    polls: int = 0
    retries: int = 0
    detail: str = ""


ProgressCallback = Callable[[Progress], None]
StartedCallback = Callable[[str, GenerationRequest], "Awaitable[None] | None"]


async def _notify_started(callback: StartedCallback | None, operation_id: str, request: GenerationRequest) -> None:
    if callback is not None:
        outcome = callback(operation_id, request)
        if inspect.isawaitable(outcome):
            await outcome


class YandexArtClient:
    """An async client of the YandexART REST API; one aiohttp session, reused.

    Use it as ``async with YandexArtClient(...) as client:``. With ``base_url="emulator"`` it
    starts (or reuses) the embedded emulator and needs no credentials.
    """

    def __init__(
        self,
        *,
        folder_id: str | None = None,
        credentials: Credentials | None = None,
        api_key: str | None = None,
        iam_token: str | None = None,
        base_url: str | None = None,
        settings: Settings | None = None,
        retry: RetryPolicy | None = None,
        poll_policy: PollPolicy | None = None,
        quotas: Quotas | None = None,
        request_timeout: float | None = None,
        wait_timeout: float | None = None,
        data_logging: bool | None = None,
        generations_per_minute: int | None = None,
        reads_per_second: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        base = settings or Settings.from_env(env)
        overrides: dict[str, Any] = {
            k: v for k, v in {
                "base_url": base_url, "folder_id": folder_id, "request_timeout": request_timeout,
                "wait_timeout": wait_timeout, "data_logging": data_logging,
                "generations_per_minute": generations_per_minute, "reads_per_second": reads_per_second,
            }.items() if v is not None
        }
        self.settings = Settings(**{**base.__dict__, **overrides})
        if self.settings.base_url != EMULATOR:
            check_url(self.settings.base_url, "base URL")
        self._explicit_credentials = credentials
        self._api_key = api_key
        self._iam_token = iam_token
        self._env = env
        self._credentials: Credentials | None = None
        self.retry = retry or RetryPolicy()
        #: A fixed schedule for every wait; None (the default) adapts to learned generation times.
        self.poll_policy: PollPolicy | None = poll_policy
        self.quotas = quotas or Quotas(self.settings.generations_per_minute, self.settings.reads_per_second)
        self._session: aiohttp.ClientSession | None = None
        self._base_url: str | None = None
        self._folder_id: str | None = self.settings.folder_id
        if self._folder_id is None and self.settings.base_url == EMULATOR:
            from .emulator.config import DEFAULT_FOLDER

            self._folder_id = DEFAULT_FOLDER

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> YandexArtClient:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Resolve the endpoint and credentials and open the HTTP session (idempotent)."""
        if self._session is not None and not self._session.closed:
            return
        self._base_url, self._credentials = await self._resolve_endpoint()
        self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        """Close the HTTP session; the client can be opened again."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _resolve_endpoint(self) -> tuple[str, Credentials]:
        if self.settings.base_url == EMULATOR:
            from .emulator import embedded

            emulator = await asyncio.to_thread(embedded)
            credentials = self._explicit_credentials or (
                resolve_credentials(api_key=self._api_key, iam_token=self._iam_token, env={})
                if self._api_key or self._iam_token
                else ApiKey(emulator.config.default_api_key, "the embedded emulator")
            )
            return emulator.url, credentials
        credentials = self._explicit_credentials or resolve_credentials(
            api_key=self._api_key, iam_token=self._iam_token, iam_url=self.settings.iam_url, env=self._env
        )
        return self.settings.base_url.rstrip("/"), credentials

    @property
    def folder_id(self) -> str | None:
        return self._folder_id

    @property
    def credentials(self) -> Credentials | None:
        """The credentials in use (after :meth:`open`); their repr never shows the secret."""
        return self._credentials

    @property
    def base_url(self) -> str:
        return self._base_url or self.settings.base_url

    def __repr__(self) -> str:
        creds = self._credentials.describe() if self._credentials else "unresolved"
        return f"<YandexArtClient {self.base_url} folder={self._folder_id} credentials={creds}>"

    # -- requests ----------------------------------------------------------------------------

    def build_request(
        self,
        prompt: PromptLike,
        *,
        seed: int | str | None = None,
        aspect: AspectRatioLike | None = None,
        mime_type: str = "image/jpeg",
        model_uri: str | None = None,
    ) -> GenerationRequest:
        """Validate a request locally (nothing is sent); the folder fills the default model URI."""
        return build_request(
            prompt, seed=seed, aspect=aspect, mime_type=mime_type,
            model_uri=model_uri, folder_id=self._folder_id,
        )

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise errors.ConfigurationError(
                "The client is not open: use `async with YandexArtClient(...) as client:`"
            )
        return self._session

    def _headers(self) -> dict[str, str]:
        headers = {}
        if self._folder_id and self._credentials and self._credentials.sends_folder_header:
            headers["x-folder-id"] = self._folder_id
        if self.settings.data_logging is not None:
            headers["x-data-logging-enabled"] = "true" if self.settings.data_logging else "false"
        return headers

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        operation_id: str | None = None,
        on_retry: Callable[[int, str, float], None] | None = None,
        check: Callable[[Response], Any] | None = None,
        limiter: SlidingWindowLimiter | None = None,
        limiter_held: bool = False,
    ) -> Response:
        session = self._require_session()
        credentials = self._credentials
        assert credentials is not None

        async def auth(refresh: bool) -> str:
            return await credentials.authorization(session, refresh)

        return await send(
            session, method, f"{self.base_url}{path}",
            json_body=json_body, headers={**self._headers(), **(headers or {})},
            auth=auth, refreshable=credentials.refreshable, retry=self.retry,
            timeout=self.settings.request_timeout, operation_id=operation_id,
            on_retry=on_retry, check=check, limiter=limiter, limiter_held=limiter_held,
        )

    def _limiters(self) -> QuotaLimiters:
        """The quota limiters shared by every client of this endpoint and folder on this loop."""
        return limiters_for(self.base_url, self._folder_id, self.quotas)

    async def start(
        self, request: GenerationRequest, *, on_retry: Callable[[int, str, float], None] | None = None
    ) -> str:
        """Start a generation and return its operation id.

        A start whose response was lost (dropped connection, timeout) is ambiguous: the server may
        have started, and billed, the generation. We retry it with the same ``Idempotency-Key``
        (a UUID per start, which Yandex Cloud APIs use to deduplicate) instead of failing the
        user's cell; the retry is logged at WARNING so a possible duplicate is never silent.
        """
        idempotency_key = str(uuid.uuid4())
        holder: dict[str, str] = {}

        async def check(response: Response) -> None:
            try:
                data = response.json()
                holder["id"] = str(data["id"])
            except (ValueError, KeyError, TypeError):
                raise RetryableError("malformed start response") from None
            if not holder["id"]:
                raise RetryableError("start response without an operation id")

        await self._send(
            "POST", GENERATE_PATH, json_body=request.to_json(),
            headers={"Idempotency-Key": idempotency_key}, on_retry=on_retry, check=check,
            limiter=self._limiters().starts,
        )
        log.debug("started operation %s (seed %s)", holder["id"], request.seed)
        return holder["id"]

    async def get_operation(
        self,
        operation_id: str,
        *,
        on_retry: Callable[[int, str, float], None] | None = None,
        limiter_held: bool = False,
    ) -> Operation:
        """Read an operation once (retrying transient faults) within the read quota; a big body is
        decoded in small steps that let the loop run. ``limiter_held``: the caller already took
        this read's quota slot."""
        parsed: list[Operation] = []

        async def check(response: Response) -> None:
            try:
                parsed.append(await read_operation(response.body))
            except MalformedOperation as exc:
                raise RetryableError(str(exc)) from None

        await self._send(
            "GET", f"/operations/{operation_id}", operation_id=operation_id, on_retry=on_retry, check=check,
            limiter=self._limiters().reads, limiter_held=limiter_held,
        )
        return parsed[0]

    async def wait(
        self,
        operation_id: str,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        poll_policy: PollPolicy | None = None,
        read_now: bool = False,
        request: GenerationRequest | None = None,
        submitted: float | None = None,
    ) -> Operation:
        """Wait until the operation is done; raise its error, or a timeout that names the id.

        Reads go through the loop's one :class:`~.scheduler.PollScheduler`, within the read quota.
        Unless a ``poll_policy`` is given, the schedule adapts to the generation times learned
        for the request's aspect and model (``submitted`` is when it started, a monotonic time).
        ``read_now`` reads at once (for an operation started long ago).
        """
        limit = self.settings.wait_timeout if timeout is None else timeout
        started = time.monotonic() if submitted is None else submitted
        adaptive = AdaptivePolicy(DURATIONS, str(request.aspect), request.model_uri) if request else AdaptivePolicy()
        policy = poll_policy or self.poll_policy or adaptive
        retries = 0
        polls = 0

        def report(phase: str, detail: str = "") -> None:
            if on_progress is not None:
                on_progress(Progress(phase, operation_id, time.monotonic() - started, polls, retries, detail))

        def retried(attempt: int, reason: str, delay: float) -> None:
            nonlocal retries
            retries += 1
            report("retry", reason)

        limiters = self._limiters()
        watch = policy.watch() if isinstance(policy, AdaptivePolicy) and not read_now else None
        sent = started

        def polled(operation: Operation, count: int) -> None:
            nonlocal polls
            polls = count
            if watch is not None:
                watch.alive(sent - started)
            report("polling")

        async def read() -> Operation:
            nonlocal sent
            sent = time.monotonic()  # what the server saw, it saw after this
            return await self.get_operation(operation_id, on_retry=retried, limiter_held=True)

        duration: float | None = None
        try:
            operation = await asyncio.wait_for(
                scheduler().wait(read, policy, started=started, limiter=limiters.reads, read_now=read_now,
                                 on_poll=polled),
                max(0.0, limit - (time.monotonic() - started)),
            )
            if operation.error is None:
                duration = sent - started
        except asyncio.TimeoutError:
            raise errors.GenerationTimeoutError(
                f"Gave up waiting after {time.monotonic() - started:.0f} s (timeout {limit:g} s); "
                "the generation may still finish",
                operation_id=operation_id,
                hint=f"Collect it later with `%yandexart resume {operation_id}` or client.wait('{operation_id}')",
            ) from None
        finally:
            if watch is not None:
                watch.finished(duration)
        if operation.error is not None:
            report("failed", operation.error.message)
            raise self._operation_error(operation)
        report("done")
        return operation

    def _operation_error(self, operation: Operation) -> errors.YandexArtError:
        assert operation.error is not None
        code, message = operation.error.code, operation.error.message
        mapped = error_for(None, code, message, operation_id=operation.id, grpc_code=code)
        if isinstance(mapped, (errors.ContentModerationError, errors.OperationCancelledError)):
            return mapped
        return errors.OperationFailedError(
            f"The generation failed (code {code}): {message or 'no message'}",
            operation_id=operation.id, grpc_code=code,
        )

    async def cancel(self, operation_id: str) -> bool:
        """Ask the server to cancel; True when it confirmed, False when it does not support it."""
        try:
            await self._send("POST", f"/operations/{operation_id}:cancel", operation_id=operation_id)
        except (errors.InvalidRequestError, errors.OperationNotFoundError) as exc:
            log.debug("cancel of %s not honoured: %s", operation_id, exc)
            return False
        return True

    async def generate(
        self,
        prompt: PromptLike | GenerationRequest,
        *,
        seed: int | str | None = None,
        aspect: AspectRatioLike | None = None,
        mime_type: str = "image/jpeg",
        model_uri: str | None = None,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        on_started: StartedCallback | None = None,
    ) -> GeneratedImage:
        """Validate, start, wait and return the image: the whole round trip.

        ``on_started(operation_id, request)`` (plain or async) runs as soon as the id is known, so
        a caller can record it before any waiting starts (nothing is lost if the wait is interrupted).
        """
        request = prompt if isinstance(prompt, GenerationRequest) else self.build_request(
            prompt, seed=seed, aspect=aspect, mime_type=mime_type, model_uri=model_uri
        )
        await self.open()
        submitted = datetime.now(timezone.utc)
        clock = time.monotonic()
        if on_progress is not None:
            on_progress(Progress("starting", None, 0.0))

        def retried(attempt: int, reason: str, delay: float) -> None:
            if on_progress is not None:
                on_progress(Progress("retry", None, time.monotonic() - clock, retries=attempt, detail=reason))

        start = asyncio.ensure_future(self.start(request, on_retry=retried))
        try:
            operation_id = await asyncio.shield(start)
        except asyncio.CancelledError:
            # Interrupted while the start request is in flight: the server may already have
            # created the operation, so give the request a moment to tell us its id.
            try:
                operation_id = await asyncio.wait_for(start, START_GRACE)
            except BaseException:
                raise asyncio.CancelledError() from None
            await _notify_started(on_started, operation_id, request)
            raise
        await _notify_started(on_started, operation_id, request)
        if on_progress is not None:
            on_progress(Progress("started", operation_id, time.monotonic() - clock))
        operation = await self.wait(
            operation_id, timeout=timeout, on_progress=on_progress, request=request, submitted=clock
        )
        return self.to_image(operation, request, submitted)

    def to_image(
        self, operation: Operation, request: GenerationRequest | None, submitted: datetime | None = None
    ) -> GeneratedImage:
        """Wrap a finished operation as a :class:`GeneratedImage` (request unknown when resuming)."""
        if operation.image is None:
            raise errors.OperationFailedError("The operation has no image", operation_id=operation.id)
        return GeneratedImage(
            image_bytes=operation.image,
            mime_type=sniff_mime(operation.image),
            seed=request.seed if request else None,
            aspect=request.aspect if request else None,
            messages=request.messages if request else (),
            operation_id=operation.id,
            model_version=operation.model_version,
            model_uri=request.model_uri if request else None,
            submitted_at=submitted,
            done_at=datetime.now(timezone.utc),
        )

    async def resume(
        self, operation_id: str, *, timeout: float | None = None, on_progress: ProgressCallback | None = None
    ) -> GeneratedImage:
        """Collect the image of an operation started earlier (another kernel, another day)."""
        await self.open()
        operation = await self.wait(operation_id, timeout=timeout, on_progress=on_progress, read_now=True)
        return self.to_image(operation, None)
