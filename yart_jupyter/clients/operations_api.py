"""The asynchronous-operations API: ``imageGenerationAsync`` starts a generation, its operation is polled.

A start whose answer was lost is retried with the same ``Idempotency-Key`` (the service deduplicates
on it); every read goes through the loop's one scheduler, within the folder's read quota.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone

from ..core import errors
from ..core.config import GENERATE_PATH, Settings
from ..core.redact import get_logger
from ..core.request import GenerationRequest
from ..media.image import GeneratedImage
from ..media.pixels import sniff_mime
from .connection import Connection
from .durations import DURATIONS
from .operation import MalformedOperation, Operation, read_operation
from .polling import PollPolicy
from .read_policy import AdaptivePolicy
from .transport import Delivery, Exchange, Response, RetryableError
from .waiting import (
    Progress,
    ProgressCallback,
    RetryCallback,
    StartedCallback,
    SubmittingCallback,
    notify_started,
    notify_submitting,
    start_progress,
    wait_for_operation,
)

log = get_logger("yart_jupyter.clients.operations_api")

#: How long an interrupted caller still waits for a start request already sent, to learn its id.
START_GRACE = 1.0


class OperationsApi:
    """Generations as long-running operations: start, read, wait, cancel, collect."""

    def __init__(self, connection: Connection, settings: Settings, poll_policy: PollPolicy | None = None) -> None:
        self.connection = connection
        self.settings = settings
        #: A fixed schedule for every wait; None (the default) adapts to learned generation times.
        self.poll_policy = poll_policy

    async def start(
        self, request: GenerationRequest, *, on_retry: RetryCallback | None = None,
        idempotency_key: str | None = None, on_submitting: SubmittingCallback | None = None,
    ) -> str:
        """Start a generation and return its operation id.

        A start whose response was lost (dropped connection, timeout) is ambiguous: the server may
        have started, and billed, the generation. We retry it with the same ``Idempotency-Key``
        (a UUID per start unless the caller recorded one, which Yandex Cloud APIs use to
        deduplicate) instead of failing the user's cell; the retry is logged at WARNING.
        ``on_submitting`` runs once the quota allows the request, right before it goes out, and again
        before a start the service refused (429, 5xx) is sent again; it may raise to give it up.
        """
        return (await self._start(request, on_retry=on_retry, idempotency_key=idempotency_key,
                                  on_submitting=on_submitting))[0]

    async def _start(
        self, request: GenerationRequest, *, on_retry: RetryCallback | None = None,
        idempotency_key: str | None = None, on_submitting: SubmittingCallback | None = None,
    ) -> tuple[str, float]:
        """:meth:`start`, and when the request that started the generation was sent (monotonic):
        the generation's clock, which waits for quota and retries are not part of."""
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
        await notify_submitting(on_submitting, limiter, taken)
        reached = True
        try:
            answer = await self.connection.send(
                Exchange("POST", GENERATE_PATH, json_body=request.to_json(),
                         headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())}, check=check),
                Delivery(limiter=limiter, limiter_held=True, on_retry=on_retry,
                         before_resend=(lambda: notify_submitting(on_submitting)) if on_submitting else None),
            )
        except errors.ServiceUnreachableError:
            reached = False  # no attempt reached the service: it counted none of them
            raise
        finally:
            (limiter.settle if reached else limiter.release)(taken)
        log.debug("started operation %s (seed %s)", holder["id"], request.seed)
        return holder["id"], answer.sent

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
            Exchange("GET", f"/operations/{operation_id}", operation_id=operation_id, check=check),
            Delivery(limiter=self.connection.limiters().reads, limiter_held=limiter_held, on_retry=on_retry),
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
            await self.connection.send(Exchange("POST", f"/operations/{operation_id}:cancel",
                                                operation_id=operation_id))
        except (errors.InvalidRequestError, errors.OperationNotFoundError) as exc:
            log.debug("cancel of %s not honoured: %s", operation_id, exc)
            return False
        return True

    async def generate(
        self,
        request: GenerationRequest,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        on_started: StartedCallback | None = None,
        idempotency_key: str | None = None,
        on_submitting: SubmittingCallback | None = None,
    ) -> GeneratedImage:
        """Start, wait and return the image; ``on_started`` runs as soon as the operation id is known."""
        submitted = datetime.now(timezone.utc)
        clock, retried = start_progress(on_progress)

        going_out = False

        async def submitting() -> None:  # from here on the service may have the start
            nonlocal going_out
            going_out = True
            await notify_submitting(on_submitting)

        start = asyncio.ensure_future(self._start(request, on_retry=retried, idempotency_key=idempotency_key,
                                                  on_submitting=submitting))
        try:
            operation_id, sent = await asyncio.shield(start)
        except asyncio.CancelledError:
            if not going_out:  # still waiting for a slot of the quota: nothing was sent, nothing to wait for
                start.cancel()
                raise
            # Interrupted while the start request is in flight: the server may already have
            # created the operation, so give the request a moment to tell us its id.
            try:
                operation_id, sent = await asyncio.wait_for(start, START_GRACE)
            except BaseException:
                raise asyncio.CancelledError() from None
            await notify_started(on_started, operation_id, request)
            raise
        await notify_started(on_started, operation_id, request)
        if on_progress is not None:
            on_progress(Progress("started", operation_id, time.monotonic() - clock))
        # the wait (what the duration model learns, the read plan, the timeout) counts from the
        # request that started the generation, not from the call: a batch's rows wait for quota first
        operation = await self.wait(
            operation_id, timeout=timeout, on_progress=on_progress, request=request, submitted=sent
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
        operation = await self.wait(operation_id, timeout=timeout, on_progress=on_progress, read_now=True)
        return self.to_image(operation, None)
