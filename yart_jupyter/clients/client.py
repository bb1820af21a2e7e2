"""The async YandexART client: one interface over both APIs the service serves.

A request goes to the asynchronous-operations API (:mod:`.operations_api`) or to the synchronous
Images API (:mod:`.images_api`) as its model says; both share one connection (credentials, quotas,
retries). It knows nothing of IPython: the magic, the widget and the Python API all sit on top of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import TracebackType

from ..core.config import Settings
from ..core.models import chosen
from ..core.redact import get_logger
from ..core.request import AspectRatioLike, GenerationRequest, PromptLike
from ..media.image import GeneratedImage
from .connection import USER_AGENT, Connection
from .credentials import Credentials
from .images_api import ImagesApi
from .limits import Quotas
from .operation import Operation
from .operations_api import OperationsApi
from .polling import PollPolicy
from .transport import RetryPolicy
from .waiting import Progress, ProgressCallback, RetryCallback, StartedCallback, SubmittingCallback

log = get_logger("yart_jupyter.clients.client")

__all__ = ["USER_AGENT", "Progress", "ProgressCallback", "YandexArtClient"]


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
        #: The asynchronous-operations API and the Images API, on one connection.
        self.operations = OperationsApi(self.connection, self.settings, poll_policy)
        self.images = ImagesApi(self.connection, self.settings)

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

    @property
    def poll_policy(self) -> PollPolicy | None:
        """A fixed schedule for every wait; None (the default) adapts to learned generation times."""
        return self.operations.poll_policy

    @poll_policy.setter
    def poll_policy(self, policy: PollPolicy | None) -> None:
        self.operations.poll_policy = policy

    # -- the asynchronous-operations API (see :class:`.OperationsApi`) ----------------------------

    async def start(
        self, request: GenerationRequest, *, on_retry: RetryCallback | None = None,
        idempotency_key: str | None = None, on_submitting: SubmittingCallback | None = None,
    ) -> str:
        """Start a generation and return its operation id (see :meth:`.OperationsApi.start`)."""
        return await self.operations.start(request, on_retry=on_retry, idempotency_key=idempotency_key,
                                           on_submitting=on_submitting)

    async def get_operation(
        self, operation_id: str, *, on_retry: RetryCallback | None = None, limiter_held: bool = False,
    ) -> Operation:
        """Read an operation once, within the read quota."""
        return await self.operations.get_operation(operation_id, on_retry=on_retry, limiter_held=limiter_held)

    async def wait(
        self, operation_id: str, *, timeout: float | None = None, on_progress: ProgressCallback | None = None,
        poll_policy: PollPolicy | None = None, read_now: bool = False, request: GenerationRequest | None = None,
        submitted: float | None = None,
    ) -> Operation:
        """Wait until the operation is done; raise its error, or a timeout that names the id."""
        return await self.operations.wait(operation_id, timeout=timeout, on_progress=on_progress,
                                          poll_policy=poll_policy, read_now=read_now, request=request,
                                          submitted=submitted)

    async def cancel(self, operation_id: str) -> bool:
        """Ask the server to cancel; True when it confirmed, False when it does not support it."""
        return await self.operations.cancel(operation_id)

    def to_image(
        self, operation: Operation, request: GenerationRequest | None, submitted: datetime | None = None
    ) -> GeneratedImage:
        """Wrap a finished operation as a :class:`GeneratedImage` (request unknown when resuming)."""
        return self.operations.to_image(operation, request, submitted)

    async def resume(
        self, operation_id: str, *, timeout: float | None = None, on_progress: ProgressCallback | None = None
    ) -> GeneratedImage:
        """Collect the image of an operation started earlier (another kernel, another day)."""
        await self.open()
        return await self.operations.resume(operation_id, timeout=timeout, on_progress=on_progress)

    # -- either API -------------------------------------------------------------------------------

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
        on_submitting: SubmittingCallback | None = None,
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
            return await self.images.generate(request, on_progress=on_progress, on_started=on_started,
                                              idempotency_key=idempotency_key, on_submitting=on_submitting)
        return await self.operations.generate(request, timeout=timeout, on_progress=on_progress, on_started=on_started,
                                              idempotency_key=idempotency_key, on_submitting=on_submitting)

    async def generate_now(
        self, request: GenerationRequest, *, on_progress: ProgressCallback | None = None,
        on_started: StartedCallback | None = None, idempotency_key: str | None = None,
        on_submitting: SubmittingCallback | None = None,
    ) -> GeneratedImage:
        """One synchronous request to the Images API (see :meth:`.ImagesApi.generate`)."""
        await self.open()
        return await self.images.generate(request, on_progress=on_progress, on_started=on_started,
                                          idempotency_key=idempotency_key, on_submitting=on_submitting)
