"""The async YandexART client: start a generation, poll its operation, return the image.

It knows nothing of IPython: the magic, the widget and the Python API all sit on top of it.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from types import TracebackType

import aiohttp

from ..core import errors
from ..core.config import GENERATE_PATH, IMAGES_PATH, Settings
from ..core.models import chosen
from ..core.redact import get_logger
from ..core.request import AspectRatioLike, GenerationRequest, PromptLike
from ..media.image import GeneratedImage, sniff_mime
from .connection import USER_AGENT, Connection
from .credentials import Credentials
from .durations import DURATIONS
from .images_api import IMAGES_MIN_TIMEOUT, ImagesAnswer, images_id, read_images_answer
from .limits import Quotas
from .operation import MalformedOperation, Operation, read_operation
from .polling import PollPolicy
from .read_policy import AdaptivePolicy
from .transport import Response, RetryableError, RetryPolicy
from .waiting import Progress, ProgressCallback, RetryCallback, wait_for_operation

log = get_logger("yart_jupyter.clients.client")

__all__ = ["USER_AGENT", "Progress", "ProgressCallback", "YandexArtClient"]

#: How long an interrupted caller still waits for a start request already sent, to learn its id.
START_GRACE = 1.0
StartedCallback = Callable[[str, GenerationRequest], "Awaitable[None] | None"]


async def _notify_started(callback: StartedCallback | None, operation_id: str, request: GenerationRequest) -> None:
    if callback is not None:
        outcome = callback(operation_id, request)
        if inspect.isawaitable(outcome):
            await outcome


class YandexArtClient:
    """An async client of the YandexART REST API; one aiohttp session, reused.

    Use it as ``async with YandexArtClient(...) as client:``. With ``base_url="emulator"`` it
    starts (or reuses) the embedded emulator and needs no credentials. Keyword settings override
    ``settings`` (default: the environment's, see :class:`~.config.Settings`).
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
        self.settings = base.replace(
            base_url=base_url, folder_id=folder_id, request_timeout=request_timeout, wait_timeout=wait_timeout,
            data_logging=data_logging, generations_per_minute=generations_per_minute,
            reads_per_second=reads_per_second,
        )
        self.connection = Connection(
            self.settings, credentials=credentials, api_key=api_key, iam_token=iam_token, env=env,
            retry=retry, quotas=quotas,
        )
        #: A fixed schedule for every wait; None (the default) adapts to learned generation times.
        self.poll_policy: PollPolicy | None = poll_policy

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> YandexArtClient:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Resolve the endpoint and credentials and open the HTTP session (idempotent, race-free)."""
        await self.connection.open()

    async def close(self) -> None:
        """Close the HTTP session; the client can be opened again."""
        await self.connection.close()

    @property
    def folder_id(self) -> str | None:
        return self.connection.folder_id

    @property
    def credentials(self) -> Credentials | None:
        """The credentials in use (after :meth:`open`); their repr never shows the secret."""
        return self.connection.credentials

    @property
    def base_url(self) -> str:
        return self.connection.base_url

    @property
    def retry(self) -> RetryPolicy:
        return self.connection.retry

    @property
    def quotas(self) -> Quotas:
        return self.connection.quotas

    def __repr__(self) -> str:
        creds = self.credentials.describe() if self.credentials else "unresolved"
        return f"<YandexArtClient {self.base_url} folder={self.folder_id} credentials={creds}>"

    # -- requests ----------------------------------------------------------------------------

    def build_request(
        self,
        prompt: PromptLike,
        *,
        seed: int | str | None = None,
        aspect: AspectRatioLike | None = None,
        mime_type: str | None = None,
        model: str | None = None,
        model_uri: str | None = None,
    ) -> GenerationRequest:
        """Validate a request locally (nothing is sent); this client's settings fill the defaults."""
        return self.settings.request(prompt, seed=seed, aspect=aspect, mime_type=mime_type,
                                     model_uri=chosen(model, model_uri))

    async def start(
        self, request: GenerationRequest, *, on_retry: RetryCallback | None = None,
        idempotency_key: str | None = None, on_submitting: Callable[[], None] | None = None,
    ) -> str:
        """Start a generation and return its operation id.

        A start whose response was lost (dropped connection, timeout) is ambiguous: the server may
        have started, and billed, the generation. We retry it with the same ``Idempotency-Key``
        (a UUID per start unless the caller recorded one, which Yandex Cloud APIs use to
        deduplicate) instead of failing the user's cell; the retry is logged at WARNING.
        ``on_submitting`` runs once the quota allows the request, right before it goes out.
        """
        holder: dict[str, str] = {}

        async def check(response: Response) -> None:
            try:
                data = response.json()
                holder["id"] = str(data["id"])
            except (ValueError, KeyError, TypeError):
                raise RetryableError("malformed start response") from None
            if not holder["id"]:
                raise RetryableError("start response without an operation id")

        limiter = self.connection.limiters().starts
        taken = await limiter.acquire()
        if on_submitting is not None:
            on_submitting()
        try:
            await self.connection.send(
                "POST", GENERATE_PATH, json_body=request.to_json(),
                headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())}, on_retry=on_retry, check=check,
                limiter=limiter, limiter_held=True,
            )
        finally:
            limiter.settle(taken)
        log.debug("started operation %s (seed %s)", holder["id"], request.seed)
        return holder["id"]

    async def get_operation(
        self, operation_id: str, *, on_retry: RetryCallback | None = None, limiter_held: bool = False,
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

        await self.connection.send(
            "GET", f"/operations/{operation_id}", operation_id=operation_id, on_retry=on_retry, check=check,
            limiter=self.connection.limiters().reads, limiter_held=limiter_held,
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
        adaptive = AdaptivePolicy(DURATIONS, str(request.aspect), request.model_uri) if request else AdaptivePolicy()

        async def read(op: str, on_retry: RetryCallback) -> Operation:
            return await self.get_operation(op, on_retry=on_retry, limiter_held=True)

        return await wait_for_operation(
            read, operation_id, policy=poll_policy or self.poll_policy or adaptive,
            limiter=self.connection.limiters().reads,
            limit=self.settings.wait_timeout if timeout is None else timeout,
            started=time.monotonic() if submitted is None else submitted, read_now=read_now, on_progress=on_progress,
        )

    async def cancel(self, operation_id: str) -> bool:
        """Ask the server to cancel; True when it confirmed, False when it does not support it."""
        try:
            await self.connection.send("POST", f"/operations/{operation_id}:cancel", operation_id=operation_id)
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
        mime_type: str | None = None,
        model: str | None = None,
        model_uri: str | None = None,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        on_started: StartedCallback | None = None,
        idempotency_key: str | None = None,
        on_submitting: Callable[[], None] | None = None,
    ) -> GeneratedImage:
        """Validate, start, wait and return the image: the whole round trip.

        ``on_started(operation_id, request)`` (plain or async) runs as soon as the id is known, so
        a caller can record it before any waiting starts (nothing is lost if the wait is interrupted).
        """
        request = prompt if isinstance(prompt, GenerationRequest) else self.build_request(
            prompt, seed=seed, aspect=aspect, mime_type=mime_type, model_uri=chosen(model, model_uri)
        )
        await self.open()
        if request.api == "images":
            return await self.generate_now(request, on_progress=on_progress, on_started=on_started,
                                           idempotency_key=idempotency_key, on_submitting=on_submitting)
        submitted = datetime.now(timezone.utc)
        clock = time.monotonic()
        if on_progress is not None:
            on_progress(Progress("starting", None, 0.0))

        def retried(attempt: int, reason: str, delay: float) -> None:
            if on_progress is not None:
                on_progress(Progress("retry", None, time.monotonic() - clock, retries=attempt, detail=reason))

        start = asyncio.ensure_future(self.start(request, on_retry=retried, idempotency_key=idempotency_key,
                                                 on_submitting=on_submitting))
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

    async def generate_now(
        self,
        request: GenerationRequest,
        *,
        on_progress: ProgressCallback | None = None,
        on_started: StartedCallback | None = None,
        idempotency_key: str | None = None,
        on_submitting: Callable[[], None] | None = None,
    ) -> GeneratedImage:
        """One synchronous request to the Images API: the picture comes back in its answer.

        It is billed on arrival and the service keeps nothing to collect, so a request whose answer
        was lost is never sent again here (:class:`~.errors.AnswerLostError`); refusals (429, 5xx)
        are retried. The picture is named by an id made from ``idempotency_key`` (there is no
        operation), and ``on_started`` runs with it once the answer is in, before it is returned.
        """
        await self.open()
        key = idempotency_key or str(uuid.uuid4())
        picture_id = images_id(key)
        submitted = datetime.now(timezone.utc)
        clock = time.monotonic()
        if on_progress is not None:
            on_progress(Progress("starting", None, 0.0))

        def retried(attempt: int, reason: str, delay: float) -> None:
            if on_progress is not None:
                on_progress(Progress("retry", None, time.monotonic() - clock, retries=attempt, detail=reason))

        answers: list[ImagesAnswer] = []

        async def check(response: Response) -> None:
            try:
                answers.append(await read_images_answer(response.body))
            except MalformedOperation as exc:
                raise RetryableError(str(exc)) from None

        limiter = self.connection.limiters().starts
        taken = await limiter.acquire()
        if on_submitting is not None:
            on_submitting()
        try:
            await self.connection.send(
                "POST", IMAGES_PATH, json_body=request.to_json(), headers={"Idempotency-Key": key},
                on_retry=retried, check=check, limiter=limiter, limiter_held=True, api="images", replay=False,
                timeout=max(self.settings.request_timeout, IMAGES_MIN_TIMEOUT), operation_id=None,
            )
        except errors.AnswerLostError as exc:
            exc.message += f" [intent {key}]"
            raise
        finally:
            limiter.settle(taken)
        answer = answers[0]
        data = answer.image if answer.image is not None else await self._download(answer.url or "", key)
        await _notify_started(on_started, picture_id, request)
        image = GeneratedImage(
            image_bytes=data, mime_type=sniff_mime(data), seed=None, aspect=request.aspect,
            messages=request.messages, operation_id=picture_id, model_version=None, model_uri=request.model_uri,
            submitted_at=submitted, done_at=datetime.now(timezone.utc), revised_prompt=answer.revised_prompt,
        )
        if on_progress is not None:
            on_progress(Progress("done", picture_id, time.monotonic() - clock))
        log.debug("Images API answered %s", picture_id)
        return image

    async def _download(self, url: str, key: str) -> bytes:
        """A picture the Images API answered with a link: fetched without credentials (they are for the API)."""
        session = self.connection.require_session()
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout)) as got:
                got.raise_for_status()
                return await got.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise errors.AnswerLostError(
                f"The picture was made but its link could not be read ({type(exc).__name__}) [intent {key}]") from None

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
