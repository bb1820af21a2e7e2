"""The one seam where synchronous code waits for a coroutine (nest_asyncio lives only here).

The magic normally runs as a top-level ``await`` on the kernel's loop (see :mod:`.magics`); this
is for callers that cannot await, such as ``get_ipython().run_cell_magic(...)`` from code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, on the loop IPython uses."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        from IPython.core.async_helpers import get_asyncio_loop

        loop = get_asyncio_loop()  # type: ignore[no-untyped-call]
        return loop.run_until_complete(coro)  # type: ignore[no-any-return]
    import nest_asyncio

    nest_asyncio.apply(loop)
    return loop.run_until_complete(coro)
