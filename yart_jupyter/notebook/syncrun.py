"""The one seam where synchronous code waits for a coroutine (nest_asyncio lives only here).

The magic normally runs as a top-level ``await`` on the kernel's loop (see :mod:`.magics`); this
is for callers that cannot await, such as ``get_ipython().run_cell_magic(...)`` from code. It is
tested on every supported Python; where nest_asyncio cannot re-enter the running loop, the caller
gets one line saying so instead of a hang or a RuntimeError from deep inside asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..core.errors import ConfigurationError

T = TypeVar("T")

CANNOT_NEST = (
    "Cannot wait for YandexART from synchronous code while the event loop is running here ({reason}); "
    "run the cell as `%%yandexart ...` (autoawait) or `await` the coroutine instead"
)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, on the loop IPython uses."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        from IPython.core.async_helpers import get_asyncio_loop

        loop = get_asyncio_loop()  # type: ignore[no-untyped-call]
        return loop.run_until_complete(coro)  # type: ignore[no-any-return]
    try:
        import nest_asyncio

        nest_asyncio.apply(loop)
    except Exception as exc:  # nest_asyncio is archived: a new Python may break it
        coro.close()
        raise ConfigurationError(CANNOT_NEST.format(reason=f"nest_asyncio: {exc}")) from None
    if not getattr(loop, "_nest_patched", False):
        coro.close()
        raise ConfigurationError(CANNOT_NEST.format(reason=f"{type(loop).__name__} cannot be patched"))
    return loop.run_until_complete(coro)
