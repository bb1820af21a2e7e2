"""When to read which operation: one scheduler for everything in flight on a loop.

All operations of a loop share one driver, which spends the folder's read quota on the operations
most likely to have finished first (their policy's ``priority``), reading each when it is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..core.redact import get_logger
from .limits import SlidingWindowLimiter
from .operation import Operation
from .polling import PollPolicy

log = get_logger("yart_jupyter.clients.scheduler")


@dataclass(eq=False)
class _Waiter:
    read: Callable[[], Awaitable[Operation]]
    policy: PollPolicy
    started: float
    limiter: SlidingWindowLimiter | None
    on_poll: Callable[[Operation, int], None] | None
    on_done: Callable[[Operation], None] | None
    due: float
    future: asyncio.Future[Operation]
    polls: int = 0
    last_read: float = 0.0
    task: asyncio.Task[None] | None = field(default=None)

    def due_after(self, elapsed: float) -> float:
        """When the next read is due, asked ``elapsed`` seconds after the start: a policy's pause
        counts from then (the first time, from when the wait began, not from the start)."""
        return self.started + elapsed + self.policy.next_delay(self.polls, elapsed)

    def priority(self, now: float) -> float:
        rank = getattr(self.policy, "priority", None)
        if rank is None:
            return -self.due
        return float(rank(self.last_read, now - self.started))


class PollScheduler:
    """Every operation waited for on one event loop, read by one driver within the read quota.

    Waiters sit in a heap by the time of their next read, so the driver's work per read does not
    grow with the number of operations in flight; among those due, the likeliest finished go first.
    """

    def __init__(self) -> None:
        self._waiters: set[_Waiter] = set()
        self._heap: list[tuple[float, int, _Waiter]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._driver: asyncio.Task[None] | None = None
        self._replanner: asyncio.Task[None] | None = None
        self._replan_wanted = False
        self.reads = 0

    def _schedule(self, waiter: _Waiter) -> None:
        if not self._heap or waiter.due < self._heap[0][0]:
            self._wake.set()
        heapq.heappush(self._heap, (waiter.due, next(self._order), waiter))

    async def wait(
        self,
        read: Callable[[], Awaitable[Operation]],
        policy: PollPolicy,
        *,
        started: float,
        limiter: SlidingWindowLimiter | None = None,
        read_now: bool = False,
        on_poll: Callable[[Operation, int], None] | None = None,
        on_done: Callable[[Operation], None] | None = None,
    ) -> Operation:
        """Return the operation once a read finds it done (or failed); reads raise through.

        ``on_done`` hears of the ending read before the others are replanned (so a duration model
        it feeds already knows this generation when their schedules are asked again)."""
        if not read_now:
            await _prepare(policy)
        now = time.monotonic()
        future: asyncio.Future[Operation] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(read, policy, started, limiter, on_poll, on_done, now, future)
        if not read_now:
            waiter.due = waiter.due_after(now - started)
        self._waiters.add(waiter)
        self._schedule(waiter)
        if self._driver is None or self._driver.done():
            self._driver = asyncio.get_running_loop().create_task(self._drive(), name="yandexart-poll-scheduler")
        try:
            return await waiter.future
        finally:
            self._waiters.discard(waiter)
            if waiter.task is not None and not waiter.task.done():
                waiter.task.cancel()
            if not self._waiters:  # the driver ends as soon as nothing is waited for
                self._heap.clear()
                self._wake.set()

    def _pop_due(self, now: float) -> list[_Waiter]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            when, _, waiter = heapq.heappop(self._heap)
            if waiter.due == when and self._idle(waiter):
                due.append(waiter)
        return due

    async def _drive(self) -> None:
        """Read each waiter when it is due; should the driver itself fail, every wait fails with its
        error rather than waiting for a read that would never come."""
        try:
            await self._drive_reads()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("the read scheduler failed")
            for waiter in list(self._waiters):
                if not waiter.future.done():
                    waiter.future.set_exception(exc)

    async def _drive_reads(self) -> None:
        while self._waiters:
            now = time.monotonic()
            due = self._pop_due(now)
            if not due:
                self._wake.clear()
                upcoming = self._heap[0][0] - now if self._heap else None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), upcoming)
                continue
            due.sort(key=lambda w: w.priority(now), reverse=True)
            for index, waiter in enumerate(due):
                taken = await waiter.limiter.acquire() if waiter.limiter is not None else None
                if waiter.future.done() or waiter not in self._waiters:
                    if waiter.limiter is not None and taken is not None:  # nothing sent on it
                        waiter.limiter.settle(taken)
                    continue
                waiter.task = asyncio.get_running_loop().create_task(self._read(waiter, taken))
                if waiter.limiter is not None and waiter.limiter.delay() > 0:
                    for rest in due[index + 1:]:  # re-rank them with whatever became due meanwhile
                        heapq.heappush(self._heap, (rest.due, next(self._order), rest))
                    break

    async def _read(self, waiter: _Waiter, taken: float | None = None) -> None:
        """One read of a waiting operation, on the quota slot taken at ``taken`` (settled once answered:
        the service counted it when it arrived). The waiter is this read's (``task`` set, so neither
        the driver nor a replan touches it) until its next read is scheduled."""
        try:
            try:
                operation = await waiter.read()
            finally:
                if waiter.limiter is not None and taken is not None:
                    waiter.limiter.settle(taken)
        except asyncio.CancelledError:
            waiter.task = None
            raise
        except BaseException as exc:
            waiter.task = None
            if not waiter.future.done():
                waiter.future.set_exception(exc)
            return
        self.reads += 1
        waiter.polls += 1
        waiter.last_read = time.monotonic() - waiter.started
        if operation.done or operation.error is not None:
            waiter.task = None
            if waiter.on_done is not None:
                try:
                    waiter.on_done(operation)
                except Exception:  # a hook that fails must not keep the operation from its waiter
                    log.exception("on_done failed for a finished operation")
            if not waiter.future.done():
                waiter.future.set_result(operation)
            self._replan_soon()
            return
        if waiter.on_poll is not None:
            try:
                waiter.on_poll(operation, waiter.polls)
            except Exception:  # a hook that fails must not leave the operation unread for good
                log.exception("on_poll failed for a running operation; its wait goes on")
        try:
            await _prepare(waiter.policy)
            waiter.due = waiter.due_after(waiter.last_read)
        except asyncio.CancelledError:
            waiter.task = None
            raise
        except BaseException as exc:  # no next read can be planned: the wait says so, never hangs
            waiter.task = None
            if not waiter.future.done():
                waiter.future.set_exception(exc)
            return
        waiter.task = None
        self._schedule(waiter)

    def _replan_soon(self) -> None:
        """A generation finished: replan the others (:meth:`_replan`) in a task of its own, so the
        plan the model's new belief needs is worked out a step at a time (the read that saw the
        finish is over: its waiter's wait has returned)."""
        self._replan_wanted = True
        if self._replanner is None or self._replanner.done():
            self._replanner = asyncio.get_running_loop().create_task(self._replan(), name="yandexart-replan")

    async def _replan(self) -> None:
        """A generation finished, so the model knows more: bring forward the next read of every
        other operation whose schedule, asked again at its last read, now says sooner. (Before
        anything finished, reads were spaced for an unknown duration, seconds apart; the first
        finish shows where the others are likely to finish, and they should not wait out a read
        planned for the ignorance of a moment ago; one not read yet may be read at once.) Reads
        only come sooner, within each policy's per-operation cap. Finishes seen meanwhile are
        replanned for once more, after this round."""
        while self._replan_wanted:
            self._replan_wanted = False
            for other in list(self._waiters):
                if not self._idle(other):
                    continue  # (one not read yet is asked from its start: last_read is 0)
                await _prepare(other.policy)  # at once, unless a new plan must be worked out
                if not self._idle(other):
                    continue
                due = max(time.monotonic(), other.due_after(other.last_read))
                if due < other.due - 1e-3:
                    other.due = due
                    self._schedule(other)

    def _idle(self, waiter: _Waiter) -> bool:
        """Whether a waiter is still waited for, between reads."""
        return waiter in self._waiters and waiter.task is None and not waiter.future.done()


async def _prepare(policy: PollPolicy) -> None:
    """Let a policy work out what its next answer needs, a step at a time, before it is asked."""
    prepare = getattr(policy, "prepare", None)
    if prepare is not None:
        await prepare()


_schedulers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PollScheduler] = weakref.WeakKeyDictionary()


def scheduler() -> PollScheduler:
    """The running loop's scheduler."""
    loop = asyncio.get_running_loop()
    if loop not in _schedulers:
        _schedulers[loop] = PollScheduler()
    return _schedulers[loop]
