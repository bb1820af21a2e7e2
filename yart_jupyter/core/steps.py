"""Work done a step at a time: a generator that yields between short steps, run at once or over turns
of the event loop.

The kernel's loop is shared with everything else the notebook does, so a long piece of work on it
(decoding a big picture, making a dozen widgets) is written as steps; :func:`steps_on_loop` lets the
loop run between them, where a worker thread would compete with the loop for the GIL instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import weakref
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from .redact import get_logger

log = get_logger("yart_jupyter.core.steps")

T = TypeVar("T")

#: Work that yields between its steps and returns a ``T``.
Steps = Generator[None, None, T]


def steps_now(steps: Steps[T]) -> T:
    """Run every step at once and return the result (for callers that cannot await)."""
    while (done := _step(steps)) is None:
        pass
    return done[0]


async def steps_on_loop(steps: Steps[T], *, take_turns: bool = True) -> T:
    """Run the steps, letting the event loop run everything else that is ready between two of them.

    Stepped work takes turns, one piece of work at a time, first come first served: thirty big
    answers arriving together are decoded one after another, a step per turn of the loop, rather
    than thirty steps in every turn (which would hold the loop up just as one long piece of work).
    Short work that others wait for (a read plan) passes ``take_turns=False``: it goes at once,
    beside whatever holds the turn.
    """
    async with _turn() if take_turns else contextlib.nullcontext():
        while (done := _step(steps)) is None:
            await asyncio.sleep(0)
        return done[0]


def _step(steps: Steps[T]) -> tuple[T] | None:
    """Take one step; once the work is done, its result (in a tuple, since a result may be None)."""
    try:
        next(steps)
    except StopIteration as finished:
        return (finished.value,)
    return None


async def off_thread(action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call (a store write, a file saved) in a worker thread, so the loop goes on.

    A caller cancelled meanwhile still waits for the call to end before it sees the cancellation:
    a write is never left half-way from the caller's point of view, and whatever the caller does
    next (settling what was cancelled) comes after it.
    """
    call = asyncio.ensure_future(asyncio.to_thread(action, *args, **kwargs))
    try:
        return await asyncio.shield(call)
    except asyncio.CancelledError:
        while not call.done():
            try:
                await asyncio.wait([call])
            except asyncio.CancelledError:
                continue
        if not call.cancelled() and call.exception() is not None:
            log.warning("a call failed in its thread while its caller was cancelled: %s", call.exception())
        raise


async def one_per_turn() -> None:
    """Return in a turn of the event loop where no other caller returns: many tasks that wake at once
    to send a request (fifty reads due together; each send costs the loop one to three
    milliseconds) go out one per turn, with everything else running in between. Alone, it costs
    one turn of the loop."""
    async with _lock(_paced):
        await asyncio.sleep(0)


_Locks = weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
_turns: _Locks = weakref.WeakKeyDictionary()
_paced: _Locks = weakref.WeakKeyDictionary()


def _turn() -> asyncio.Lock:
    """The running loop's lock for stepped work."""
    return _lock(_turns)


def _lock(locks: _Locks) -> asyncio.Lock:
    """The running loop's lock of ``locks`` (a lock belongs to one loop)."""
    loop = asyncio.get_running_loop()
    if loop not in locks:
        locks[loop] = asyncio.Lock()
    return locks[loop]


async def awaited(outcome: object) -> None:
    """Wait for what a callback returned when it is awaitable (callbacks may be plain or async)."""
    if inspect.isawaitable(outcome):
        await outcome
