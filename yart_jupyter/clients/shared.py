"""What every face shares in a process: one client per event loop and connection settings.

A shared client closes itself when its event loop ends (``asyncio.run`` cancels the loop's
remaining tasks, and a small watcher task closes the loop's clients then), so a plain script
that awaits :func:`yart_jupyter.generate` leaves no unclosed session behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import weakref
from typing import Any

from ..core.config import Settings
from ..core.settings import current
from .client import YandexArtClient

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], YandexArtClient]] = (
    weakref.WeakKeyDictionary()
)
_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()


def shared_client(settings: Settings | None = None) -> YandexArtClient:
    """The running loop's client for these settings (default: the current ones), made on first use."""
    settings = settings or current()
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    key = settings.connection_key()
    client = per_loop.get(key)
    if client is None:
        client = per_loop[key] = YandexArtClient(settings=settings)
        if loop not in _watchers:
            _watchers[loop] = loop.create_task(_close_when_loop_ends(loop), name="yart_jupyter-close-clients")
    return client


async def _close_when_loop_ends(loop: asyncio.AbstractEventLoop) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        _watchers.pop(loop, None)
        for client in _clients.pop(loop, {}).values():
            await client.close()


async def close_shared_clients() -> None:
    """Close the running loop's shared clients now; they reopen on next use."""
    loop = asyncio.get_running_loop()
    watcher = _watchers.pop(loop, None)
    if watcher is not None:
        watcher.cancel()
    for client in _clients.pop(loop, {}).values():
        await client.close()


@atexit.register
def _close_at_exit() -> None:
    for loop, watcher in list(_watchers.items()):
        if loop.is_closed() or loop.is_running():
            continue
        watcher.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(watcher)
