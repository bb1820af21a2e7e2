"""When to read which operation: one scheduler for everything in flight, and an adaptive schedule.

The official SDK reads every 10 s; most clients every 1-5 s. We learn how long generations take
(per aspect and model, from the store and from this session), do not read while completion is
unlikely, read densely while it is likely, and back off in the long tail. All operations of a
loop share one scheduler, which spends the folder's read quota on the operations most likely to
have finished first.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from .limits import SlidingWindowLimiter
from .operation import Operation
from .polling import PollPolicy
from .redact import get_logger

log = get_logger("yart_jupyter.scheduler")


@dataclass(frozen=True)
class LogNormal:
    """A lognormal distribution of durations in seconds."""

    mu: float
    sigma: float

    @classmethod
    def from_median(cls, median: float, sigma: float) -> LogNormal:
        return cls(math.log(median), sigma)

    @property
    def median(self) -> float:
        return math.exp(self.mu)

    @property
    def mean(self) -> float:
        return math.exp(self.mu + self.sigma**2 / 2)

    def cdf(self, t: float) -> float:
        if t <= 0:
            return 0.0
        return 0.5 * (1.0 + math.erf((math.log(t) - self.mu) / (self.sigma * math.sqrt(2.0))))

    def quantile(self, q: float) -> float:
        return math.exp(self.mu + self.sigma * math.sqrt(2.0) * _erfinv(2.0 * q - 1.0))


def _erfinv(y: float) -> float:
    """The inverse error function (Newton steps from Winitzki's approximation)."""
    y = min(max(y, -0.999999999), 0.999999999)
    a = 0.147
    ln = math.log(1.0 - y * y)
    first = 2.0 / (math.pi * a) + ln / 2.0
    x = math.copysign(math.sqrt(math.sqrt(first * first - ln / a) - first), y)
    for _ in range(3):
        x -= (math.erf(x) - y) / (2.0 / math.sqrt(math.pi) * math.exp(-x * x))
    return x


#: What we assume before any generation has been seen: "seconds to tens of seconds".
PRIOR = LogNormal.from_median(12.0, 0.7)
#: How many observations the prior is worth.
PRIOR_WEIGHT = 5


class DurationModel:
    """Generation times learned per (aspect, model), blended with a prior; thread-safe."""

    def __init__(self, prior: LogNormal = PRIOR, prior_weight: int = PRIOR_WEIGHT, keep: int = 500) -> None:
        self.prior = prior
        self.prior_weight = prior_weight
        self.keep = keep
        self._logs: dict[tuple[str, str], list[float]] = {}
        self._all: list[float] = []
        self._lock = threading.Lock()
        self._loaded: set[str] = set()
        self._version = 0
        self._cache: dict[tuple[str, str], tuple[int, float, LogNormal]] = {}
        self._running: dict[int, tuple[tuple[str, str], float]] = {}
        self._tokens = itertools.count()

    def observe(self, seconds: float, aspect: str = "", model: str = "") -> None:
        """Learn from one finished generation."""
        if not seconds > 0:
            return
        value = math.log(seconds)
        with self._lock:
            for bucket in (self._logs.setdefault((aspect, model), []), self._all):
                bucket.append(value)
                del bucket[: max(0, len(bucket) - self.keep)]
            self._version += 1

    def learn_once(self, source: str, history: Callable[[], Iterable[tuple[float, str, str]]]) -> None:
        """Learn from a history of (seconds, aspect, model) once per ``source`` (a store path)."""
        with self._lock:
            if source in self._loaded:
                return
            self._loaded.add(source)
        for seconds, aspect, model in history():
            self.observe(seconds, aspect, model)

    def track(self, aspect: str, model: str, started: float) -> int:
        """An operation of this kind is running since ``started`` (monotonic): until it ends, the
        fact that it has not finished yet is evidence too (a right-censored observation)."""
        with self._lock:
            token = next(self._tokens)
            self._running[token] = ((aspect, model), started)
            self._version += 1
            return token

    def untrack(self, token: int) -> None:
        with self._lock:
            if self._running.pop(token, None) is not None:
                self._version += 1

    def count(self, aspect: str = "", model: str = "") -> int:
        """How many generations the distribution for (aspect, model) rests on."""
        with self._lock:
            own = len(self._logs.get((aspect, model), ()))
            return own if own >= 3 else len(self._all)

    def distribution(self, aspect: str = "", model: str = "") -> LogNormal:
        """The blended distribution for an aspect and model (all generations when that one is new)."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get((aspect, model))
            if cached is not None and cached[0] == self._version and (not self._running or now - cached[1] < 0.25):
                return cached[2]
            version = self._version
            own = (aspect, model) in self._logs and len(self._logs[(aspect, model)]) >= 3
            samples = list(self._logs[(aspect, model)]) if own else list(self._all)
            censored = [math.log(now - started) for key, started in self._running.values()
                        if (key == (aspect, model) or not own) and now - started > 0.05]
        result = self._fit(samples, censored) if samples else self.prior
        with self._lock:
            self._cache[(aspect, model)] = (version, now, result)
        return result

    def _fit(self, samples: list[float], censored: list[float]) -> LogNormal:
        """Lognormal fit of finished durations and still-running ones (EM for the censored part),
        blended with the prior. Without the running ones, early finishers would make every
        generation look quick."""
        w, prior = self.prior_weight, self.prior
        n = len(samples) + len(censored)
        total, squares = math.fsum(samples), math.fsum(x * x for x in samples)
        mu, sigma = prior.mu, prior.sigma
        for _ in range(12 if censored else 1):
            s1, s2 = total, squares
            for c in censored:
                alpha = (c - mu) / sigma
                tail = 0.5 * math.erfc(alpha / math.sqrt(2.0))
                lam = alpha if tail < 1e-300 else math.exp(-alpha * alpha / 2) / math.sqrt(2 * math.pi) / tail
                mean = mu + sigma * lam
                var = sigma * sigma * max(1e-6, 1 + alpha * lam - lam * lam)
                s1 += mean
                s2 += var + mean * mean
            mean_hat = s1 / n
            var_hat = max(0.0, s2 / n - mean_hat * mean_hat) if n > 1 else prior.sigma**2
            mu = (n * mean_hat + w * prior.mu) / (n + w)
            sigma = max(0.1, math.sqrt((n * var_hat + w * prior.sigma**2) / (n + w)))
        return LogNormal(mu, sigma)


#: The process's model: the engine feeds it from the store and from every finished generation.
DURATIONS = DurationModel()


@dataclass(frozen=True)
class AdaptivePolicy:
    """Read when there is a fair chance the operation finished since the last read.

    The next read is where the conditional probability of completion reaches ``p`` (chosen so
    the expected number of reads stays below that of a 1-second poller), but at most
    ``max_interval`` apart while completion is plausible, and backing off geometrically past
    the ``tail`` quantile, up to ``tail_interval``.
    """

    model: DurationModel | None = None
    aspect: str = ""
    model_uri: str = ""
    fixed: LogNormal | None = None
    min_interval: float = 0.05
    min_probability: float = 0.05
    budget: float = 0.8
    max_interval: float = 1.0
    first_quantile: float = 0.04
    tail: float = 0.99
    tail_interval: float = 10.0

    #: Until the model has seen this many generations, the first read comes by ``first_read_by``
    #: seconds, in case the prior is wrong (one extra read at most).
    confident_after: int = 20
    first_read_by: float = 1.0

    @property
    def distribution(self) -> LogNormal:
        """The current belief: the live model's (it keeps learning while we wait), or a fixed one."""
        if self.fixed is not None:
            return self.fixed
        return (self.model or DURATIONS).distribution(self.aspect, self.model_uri)

    def watch(self, started: float) -> Callable[[float | None], None]:
        """Tell the live model an operation of this kind runs since ``started`` (monotonic); call
        the result with its duration when it finished, or None when it did not."""
        if self.fixed is not None:
            return lambda _: None
        model = self.model or DURATIONS
        token = model.track(self.aspect, self.model_uri, started)

        def finish(duration: float | None) -> None:
            model.untrack(token)
            if duration is not None:
                model.observe(duration, self.aspect, self.model_uri)

        return finish

    @property
    def confident(self) -> bool:
        """Whether the schedule rests on enough observed generations rather than on the prior."""
        if self.fixed is not None:
            return True
        return (self.model or DURATIONS).count(self.aspect, self.model_uri) >= self.confident_after

    def read_probability(self, dist: LogNormal) -> float:
        """The chance of completion between reads: sized so reads stay below a 1 s poller's."""
        return max(self.min_probability, 1.0 / (self.budget * max(dist.mean, 1.0)))

    def next_delay(self, polls: int, elapsed: float) -> float:
        dist = self.distribution
        start = dist.quantile(self.first_quantile)
        if elapsed < start:
            if polls == 0 and not self.confident:
                return max(0.0, min(start, self.first_read_by) - elapsed)
            return start - elapsed
        tail_start = dist.quantile(self.tail)
        if elapsed >= tail_start:
            grown = self.max_interval * 1.5 ** max(0.0, math.log(elapsed / tail_start, 1.2))
            return float(min(self.tail_interval, grown))
        done = dist.cdf(elapsed)
        target = done + self.read_probability(dist) * (1.0 - done)
        delay = dist.quantile(min(target, 0.999999)) - elapsed
        return min(max(delay, self.min_interval), self.max_interval)

    def priority(self, last_read: float, now: float) -> float:
        """The chance the operation finished between ``last_read`` and ``now`` (elapsed seconds)."""
        dist = self.distribution
        survived = 1.0 - dist.cdf(last_read)
        if survived <= 1e-12:
            return 1.0
        return (dist.cdf(now) - dist.cdf(last_read)) / survived


@dataclass(eq=False)
class _Waiter:
    read: Callable[[], Awaitable[Operation]]
    policy: PollPolicy
    started: float
    limiter: SlidingWindowLimiter | None
    on_poll: Callable[[Operation, int], None] | None
    due: float
    future: asyncio.Future[Operation]
    polls: int = 0
    last_read: float = 0.0
    task: asyncio.Task[None] | None = field(default=None)

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
    ) -> Operation:
        """Return the operation once a read finds it done (or failed); reads raise through."""
        now = time.monotonic()
        due = now if read_now else started + policy.next_delay(0, now - started)
        waiter = _Waiter(read, policy, started, limiter, on_poll, due, asyncio.get_running_loop().create_future())
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
            if waiter in self._waiters and waiter.task is None and waiter.due == when and not waiter.future.done():
                due.append(waiter)
        return due

    async def _drive(self) -> None:
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
                if waiter.limiter is not None:
                    await waiter.limiter.acquire()
                if waiter.future.done() or waiter not in self._waiters:
                    continue
                waiter.task = asyncio.get_running_loop().create_task(self._read(waiter))
                if waiter.limiter is not None and waiter.limiter.delay() > 0:
                    for rest in due[index + 1:]:  # re-rank them with whatever became due meanwhile
                        heapq.heappush(self._heap, (rest.due, next(self._order), rest))
                    break

    async def _read(self, waiter: _Waiter) -> None:
        try:
            operation = await waiter.read()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if not waiter.future.done():
                waiter.future.set_exception(exc)
            return
        finally:
            waiter.task = None
        self.reads += 1
        waiter.polls += 1
        now = time.monotonic()
        waiter.last_read = now - waiter.started
        if operation.done or operation.error is not None:
            if not waiter.future.done():
                waiter.future.set_result(operation)
            return
        if waiter.on_poll is not None:
            waiter.on_poll(operation, waiter.polls)
        waiter.due = now + waiter.policy.next_delay(waiter.polls, waiter.last_read)
        self._schedule(waiter)


_schedulers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PollScheduler] = weakref.WeakKeyDictionary()


def scheduler() -> PollScheduler:
    """The running loop's scheduler."""
    loop = asyncio.get_running_loop()
    if loop not in _schedulers:
        _schedulers[loop] = PollScheduler()
    return _schedulers[loop]
