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
import math
import statistics
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
        self._cache: dict[tuple[str, str], tuple[int, LogNormal]] = {}

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

    def observe_many(self, source: str, items: Iterable[tuple[float, str, str]]) -> None:
        """Learn from history once per ``source`` (a store path): (seconds, aspect, model)."""
        with self._lock:
            if source in self._loaded:
                return
            self._loaded.add(source)
        for seconds, aspect, model in items:
            self.observe(seconds, aspect, model)

    def count(self, aspect: str = "", model: str = "") -> int:
        """How many generations the distribution for (aspect, model) rests on."""
        with self._lock:
            own = len(self._logs.get((aspect, model), ()))
            return own if own >= 3 else len(self._all)

    def distribution(self, aspect: str = "", model: str = "") -> LogNormal:
        """The blended distribution for an aspect and model (all generations when that one is new)."""
        with self._lock:
            cached = self._cache.get((aspect, model))
            if cached is not None and cached[0] == self._version:
                return cached[1]
            version = self._version
            samples = list(self._logs.get((aspect, model), ()))
            if len(samples) < 3:
                samples = list(self._all)
        n, w = len(samples), self.prior_weight
        if n == 0:
            result = self.prior
        else:
            mean = statistics.fmean(samples)
            var = statistics.pvariance(samples, mean) if n > 1 else self.prior.sigma**2
            mu = (n * mean + w * self.prior.mu) / (n + w)
            sigma2 = (n * var + w * self.prior.sigma**2) / (n + w)
            result = LogNormal(mu, max(0.1, math.sqrt(sigma2)))
        with self._lock:
            self._cache[(aspect, model)] = (version, result)
        return result


#: The process's model: the engine feeds it from the store and from every finished generation.
DURATIONS = DurationModel()


@dataclass(frozen=True)
class AdaptivePolicy:
    """Read when there is a fair chance the operation finished since the last read.

    The next read is where the conditional probability of completion reaches ``p`` (chosen so
    the expected number of reads stays below that of a 1-second poller), but at most
    ``max_interval`` apart while completion is plausible, and backing off geometrically past the
    ``tail`` quantile, up to ``tail_interval``.
    """

    model: DurationModel | None = None
    aspect: str = ""
    model_uri: str = ""
    fixed: LogNormal | None = None
    min_interval: float = 0.05
    min_probability: float = 0.05
    budget: float = 0.9
    max_interval: float = 0.95
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
    """Every operation waited for on one event loop, read by one driver within the read quota."""

    def __init__(self) -> None:
        self._waiters: set[_Waiter] = set()
        self._wake = asyncio.Event()
        self._driver: asyncio.Task[None] | None = None
        self.reads = 0

    @property
    def in_flight(self) -> int:
        return len(self._waiters)

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
        if self._driver is None or self._driver.done():
            self._driver = asyncio.get_running_loop().create_task(self._drive(), name="yandexart-poll-scheduler")
        self._wake.set()
        try:
            return await waiter.future
        finally:
            self._waiters.discard(waiter)
            if waiter.task is not None and not waiter.task.done():
                waiter.task.cancel()
            self._wake.set()

    async def _drive(self) -> None:
        while self._waiters:
            now = time.monotonic()
            idle = [w for w in self._waiters if w.task is None and not w.future.done()]
            due = sorted((w for w in idle if w.due <= now), key=lambda w: w.priority(now), reverse=True)
            if not due:
                upcoming = min((w.due for w in idle), default=None)
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), None if upcoming is None else upcoming - now)
                continue
            for waiter in due:
                if waiter.limiter is not None:
                    await waiter.limiter.acquire()
                if waiter.future.done() or waiter not in self._waiters:
                    continue
                waiter.task = asyncio.get_running_loop().create_task(self._read(waiter))
                if waiter.limiter is not None and waiter.limiter.delay() > 0:
                    break  # re-rank: others may have become more likely meanwhile

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
            self._wake.set()
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


_schedulers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PollScheduler] = weakref.WeakKeyDictionary()


def scheduler() -> PollScheduler:
    """The running loop's scheduler."""
    loop = asyncio.get_running_loop()
    if loop not in _schedulers:
        _schedulers[loop] = PollScheduler()
    return _schedulers[loop]
