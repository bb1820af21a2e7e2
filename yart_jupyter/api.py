"""The short Python API: ``await yart_jupyter.generate("prompt", seed=1863, aspect="2:1")``.

One client per event loop and per set of connection options is kept and reused, so repeated
calls share one HTTP session (and one embedded emulator).
"""

from __future__ import annotations

import asyncio
import atexit
import weakref
from collections.abc import Callable
from typing import Any

from .client import YandexArtClient
from .config import session_defaults
from .engine import BatchStatus, run_batch
from .image import GeneratedImage
from .request import AspectRatioLike, PromptLike
from .store import Record, get_store

#: The session defaults that configure a client (the rest, like ``data_dir``, configure the store).
CLIENT_OPTIONS = frozenset({
    "base_url", "folder_id", "request_timeout", "wait_timeout", "data_logging", "generations_per_minute",
    "reads_per_second",
})

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], YandexArtClient]] = (
    weakref.WeakKeyDictionary()
)


def shared_client(**options: Any) -> YandexArtClient:
    """The client of the running loop for these options (created on first use).

    Options left as None take the session defaults (``%config YandexArt.*``), then the environment.
    """
    loop = asyncio.get_running_loop()
    merged = {k: v for k, v in session_defaults().items() if k in CLIENT_OPTIONS}
    merged.update({k: v for k, v in options.items() if v is not None})
    key = tuple(sorted(merged.items()))
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get(key)
    if client is None:
        client = per_loop[key] = YandexArtClient(**merged)
    return client


async def generate(
    prompt: PromptLike,
    *,
    seed: int | str | None = None,
    aspect: AspectRatioLike | None = None,
    mime_type: str = "image/jpeg",
    model_uri: str | None = None,
    timeout: float | None = None,
    cache: bool = True,
    on_update: Callable[[BatchStatus], None] | None = None,
    base_url: str | None = None,
    folder_id: str | None = None,
) -> GeneratedImage:
    """Generate one image, record it in the local store and return it.

    With no seed a random one is chosen and recorded; with an explicit seed that was generated
    before, the stored image is returned at once (``cache=False`` forces a new generation).
    ``base_url="emulator"`` (or ``YANDEXART_BASE_URL=emulator``) uses the embedded emulator.
    """
    client = shared_client(base_url=base_url, folder_id=folder_id)
    request = client.build_request(prompt, seed=seed, aspect=aspect, mime_type=mime_type, model_uri=model_uri)
    images, failures = await run_batch(
        client, [request], timeout=timeout, on_update=on_update, store=get_store(), use_cache=cache,
    )
    if failures:
        raise failures[0]
    return images[0]


def history(limit: int | None = 20, search: str | None = None, status: str | None = None) -> list[Record]:
    """The local store's records, newest first (``search`` matches prompts)."""
    return get_store().history(limit, search, status)


def prune(*, older_than_days: float | None = None, max_megabytes: float | None = None) -> tuple[int, int]:
    """Delete old records and images from the local store; returns (records, bytes) freed."""
    return get_store().prune(
        older_than=older_than_days * 86400 if older_than_days is not None else None,
        max_bytes=int(max_megabytes * 1024 * 1024) if max_megabytes is not None else None,
    )


async def close_shared_clients() -> None:
    """Close the running loop's shared clients (their sessions); they reopen on next use."""
    for client in _clients.pop(asyncio.get_running_loop(), {}).values():
        await client.close()


@atexit.register
def _close_at_exit() -> None:
    for loop, clients in list(_clients.items()):
        if loop.is_closed() or loop.is_running():
            continue
        for client in clients.values():
            loop.run_until_complete(client.close())
