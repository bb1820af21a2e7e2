"""One operation by id: collected (from the store when it is there), cancelled on the server; and
the folder's quota shared through a team store's ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..clients.client import Progress, YandexArtClient
from ..clients.images_api import intent_prefix, is_images_id
from ..core import errors
from ..core.config import EMULATOR
from ..core.steps import off_thread
from ..media.image import GeneratedImage
from ..store import Store
from .arrivals import ARRIVALS


def share_quota(client: YandexArtClient, store: Store | None) -> None:
    """A team store's quota ledger goes to the client's limiters: the folder's quota, shared by everyone."""
    if store is not None:
        client.connection.ledger = store.quota_ledger()


async def resume(
    client: YandexArtClient,
    operation_id: str,
    *,
    store: Store | None = None,
    timeout: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> GeneratedImage:
    """Collect an operation by id: from the store when it is already there, else from the server.

    The stored request (prompt, seed, aspect) is attached to the result; an operation the server
    no longer has is marked expired, and one it never had that the store did not know is not recorded.
    """
    share_quota(client, store)
    ARRIVALS.seen(operation_id)  # asked for by its id: no later run takes it as a picture nobody has seen
    if is_images_id(operation_id):  # a picture whose run was cancelled while its answer came: in the store soon
        await ARRIVALS.wait_for(operation_id)
    record = await asyncio.to_thread(store.get, operation_id) if store is not None else None
    if record is not None and record.status == "done" and record.image_path and record.image_path.exists():
        image = await asyncio.to_thread(record.to_image)
        if on_progress is not None:
            on_progress(Progress("done", operation_id, 0.0))
        return image
    if is_images_id(operation_id):  # the Images API answered with the picture itself and keeps nothing
        sent = await asyncio.to_thread(store.find_intent, intent_prefix(operation_id)) if store is not None else None
        if sent is not None and sent.status == "submitting":
            raise errors.OperationNotFoundError(
                f"{operation_id} went out at {sent.submitted_at.astimezone():%H:%M} and its answer is not in the "
                "store: the kernel or command that sent it may still be receiving it (it keeps it here), or, if "
                "that one has ended, the answer was lost",
                hint="%yandexart pending (yart pending) lists it; resume --all --resend-lost sends it again, which "
                     "may bill it twice")
        raise errors.OperationNotFoundError(
            f"{operation_id} is a picture of the Images API, which keeps nothing to collect: only one this "
            "store holds can be shown again",
            hint="%yandexart history (yart history) lists the pictures it holds")
    if store is not None and record is None:  # kept while it is awaited: a kernel that dies can collect it later
        await off_thread(store.record_started, operation_id, None)
    try:
        image = await client.resume(operation_id, timeout=timeout, on_progress=on_progress)
    except errors.OperationNotFoundError as exc:
        if store is not None and record is None:
            await off_thread(store.forget_unknown, operation_id)  # a typo is no generation: history stays clean
        if client.settings.base_url == EMULATOR:  # not three days: its operations end with its process
            exc.hint = ("The embedded emulator keeps operations only while its process runs (each yart command "
                        "starts its own); run `yart emulator` and point YANDEXART_BASE_URL at it to collect "
                        "across processes")
        raise
    request = record.request() if record is not None else None
    if request is not None:
        image.seed, image.aspect, image.messages = request.seed, request.aspect, request.messages
        image.model_uri = request.model_uri
    if record is not None:
        image.submitted_at = record.submitted_at
    if store is not None:
        await off_thread(store.record_done, image)
    return image


def server_canceller(client: YandexArtClient, store: Store | None) -> Callable[[str], Awaitable[bool]]:
    """Cancel an operation on the server and, when the server confirms, record it as cancelled."""

    async def cancel(operation_id: str) -> bool:
        confirmed = await client.cancel(operation_id)
        if confirmed:
            ARRIVALS.seen(operation_id)  # no picture for a later ask to take
            if store is not None:
                await off_thread(store.record_failed, operation_id, "cancelled", "cancelled by the user")
        return confirmed

    return cancel
