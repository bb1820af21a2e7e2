"""The short Python API: ``await yart_jupyter.generate("prompt", seed=1863, aspect="2:1")``.

One client per event loop and per set of connection options is kept and reused, so repeated
calls share one HTTP session (and one embedded emulator).
"""

from __future__ import annotations

import asyncio
import atexit
import weakref
from typing import Any

from .client import ProgressCallback, YandexArtClient
from .config import session_defaults
from .image import GeneratedImage
from .request import AspectRatioLike, PromptLike

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], YandexArtClient]] = (
    weakref.WeakKeyDictionary()
)


def shared_client(**options: Any) -> YandexArtClient:
    """The client of the running loop for these options (created on first use).

    Options left as None take the session defaults (``%config YandexArt.*``), then the environment.
    """
    loop = asyncio.get_running_loop()
    merged = session_defaults()
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
    on_progress: ProgressCallback | None = None,
    base_url: str | None = None,
    folder_id: str | None = None,
) -> GeneratedImage:
    """Generate one image and return it; with no seed a random one is chosen and recorded.

    ``base_url="emulator"`` (or ``YANDEXART_BASE_URL=emulator``) uses the embedded emulator.
    """
    client = shared_client(base_url=base_url, folder_id=folder_id)
    return await client.generate(
        prompt, seed=seed, aspect=aspect, mime_type=mime_type, model_uri=model_uri,
        timeout=timeout, on_progress=on_progress,
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
