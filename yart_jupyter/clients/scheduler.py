"""When to read which operation: one scheduler for everything in flight, and an adaptive schedule.

The official SDK reads every 10 s; most clients every 1-5 s. We learn how long generations take
(per aspect and model, from the store and from this session), do not read while completion is
unlikely, read densely while it is likely, and back off in the long tail. All operations of a
loop share one scheduler, which spends the folder's read quota on the operations most likely to
have finished first.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import heapq
import itertools
import math
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.redact import get_logger
from .limits import SlidingWindowLimiter
from .operation import Operation
from .polling import PollPolicy

log = get_logger("yart_jupyter.clients.scheduler")


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
        return 0.5 * math.erfc(-(math.log(t) - self.mu) / (self.sigma * _SQRT2))

    def survival(self, t: float) -> float:
        """The chance a generation is still running ``t`` seconds after its start (exact in the tail)."""
        if t <= 0:
            return 1.0
        return 0.5 * math.erfc((math.log(t) - self.mu) / (self.sigma * _SQRT2))

    def hazard(self, t: float) -> float:
        """The rate of completion at ``t`` among generations still running then."""
        if t <= 0:
            return 0.0
        z = (math.log(t) - self.mu) / self.sigma
        survived = 0.5 * math.erfc(z / _SQRT2)
        if survived < 1e-300:
            return z / (self.sigma * t)  # the asymptote of the ratio below
        return math.exp(-z * z / 2) / (_SQRT2PI * self.sigma * t * survived)

    def remaining(self, elapsed: float) -> float:
        """The median time still to wait for a generation already running ``elapsed`` seconds."""
        left = self.survival(elapsed)
        if left <= 1e-9:
            return self.median
        return max(0.0, self.quantile(1.0 - left / 2.0) - elapsed)

    def quantile(self, q: float) -> float:
        return math.exp(self.mu + self.sigma * _SQRT2 * _erfinv(2.0 * q - 1.0))


_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


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


def _truncated_moments(mu: float, sigma: float, low: float, high: float) -> tuple[float, float]:
    """Mean and second moment of a normal(mu, sigma) restricted to (low, high) (either may be
    infinite): what an observation known only to lie in that span contributes to the EM fit."""
    a, b = (low - mu) / sigma, (high - mu) / sigma
    if a > 0:  # differences of upper tails keep their precision far out on the right
        mass = 0.5 * (math.erfc(a / _SQRT2) - math.erfc(b / _SQRT2))
    else:
        mass = 0.5 * (math.erfc(-b / _SQRT2) - math.erfc(-a / _SQRT2))
    if mass < 1e-300:  # the span lies far in a tail: its nearer end is as good as exact
        near = low if a > 0 else high
        return near, near * near
    pa = math.exp(-a * a / 2) / _SQRT2PI if math.isfinite(a) else 0.0
    pb = math.exp(-b * b / 2) / _SQRT2PI if math.isfinite(b) else 0.0
    ratio = (pa - pb) / mass
    spread = ((a * pa if pa else 0.0) - (b * pb if pb else 0.0)) / mass
    mean = mu + sigma * ratio
    var = sigma * sigma * max(1e-6, 1.0 + spread - ratio * ratio)
    return mean, var + mean * mean


#: What we assume before any generation has been seen: "seconds to tens of seconds".
PRIOR = LogNormal.from_median(12.0, 0.7)
#: How many observations the prior is worth.
PRIOR_WEIGHT = 2

_Key = tuple[str, str]


class DurationModel:
    """Generation times learned per (aspect, model), blended with a prior; thread-safe.

    A generation's duration is rarely known exactly: it finished somewhere between the last read
    that found it running and the read that found it done, and one still running has only a lower
    bound. Both kinds are kept as spans and fitted by EM, so a coarse first read does not pass for
    a quick generation and a detection delay does not pass for a slow one.
    """

    def __init__(self, prior: LogNormal = PRIOR, prior_weight: int = PRIOR_WEIGHT, keep: int = 500) -> None:
        self.prior = prior
        self.prior_weight = prior_weight
        self.keep = keep
        self._exact: dict[_Key, list[float]] = {}
        self._spans: dict[_Key, list[tuple[float, float]]] = {}
        self._all_exact: list[float] = []
        self._all_spans: list[tuple[float, float]] = []
        self._lower: dict[_Key, list[float]] = {}
        self._all_lower: list[float] = []
        self._lock = threading.Lock()
        self._loaded: set[str] = set()
        self._version = 0
        self._cache: dict[_Key, tuple[int, float, LogNormal]] = {}
        self._running: dict[int, tuple[_Key, float]] = {}
        self._tokens = itertools.count()

    def _keep(self, bucket: list[Any], value: Any) -> None:
        bucket.append(value)
        del bucket[: max(0, len(bucket) - self.keep)]

    def _record(self, by_kind: dict[_Key, list[Any]], every: list[Any], key: _Key, value: Any) -> None:
        """Keep one piece of evidence for its kind and for all generations; refits follow."""
        with self._lock:
            for bucket in (by_kind.setdefault(key, []), every):
                self._keep(bucket, value)
            self._version += 1

    def observe(self, seconds: float, aspect: str = "", model: str = "") -> None:
        """Learn from one finished generation whose duration is known."""
        if seconds > 0:
            self._record(self._exact, self._all_exact, (aspect, model), math.log(seconds))

    def observe_between(self, low: float, high: float, aspect: str = "", model: str = "") -> None:
        """Learn from a generation that finished after ``low`` and by ``high`` seconds."""
        if not high > 0:
            return
        if low > 0 and high - low <= 0.1 * high:  # narrow enough to count as exact
            self.observe(math.sqrt(low * high), aspect, model)
            return
        span = (math.log(low) if low > 0 else -math.inf, math.log(high))
        self._record(self._spans, self._all_spans, (aspect, model), span)

    def observe_at_least(self, low: float, aspect: str = "", model: str = "") -> None:
        """Learn from a generation last seen running ``low`` seconds after its start (never collected
        by that wait): a lower bound, fitted as such, and not counted as a finished generation."""
        if low > 0:
            self._record(self._lower, self._all_lower, (aspect, model), math.log(low))

    def learn_once(self, source: str, history: Callable[[], Iterable[tuple[float, float | None, str, str]]]) -> None:
        """Learn once per ``source`` (a store path) from what its waits saw: (low, high, aspect,
        model) spans, ``high`` None for a generation still running when last seen — the same kinds
        of evidence a live wait gives, so the model read back at start-up is the one it had."""
        with self._lock:
            if source in self._loaded:
                return
            self._loaded.add(source)
        for low, high, aspect, model in history():
            if high is None:
                self.observe_at_least(low, aspect, model)
            elif low >= high:
                self.observe(high, aspect, model)
            else:
                self.observe_between(low, high, aspect, model)

    def track(self, aspect: str, model: str) -> int:
        """An operation of this kind is running: until it ends, each read that finds it still
        running (:meth:`alive`) is evidence too (a right-censored observation)."""
        with self._lock:
            token = next(self._tokens)
            self._running[token] = ((aspect, model), 0.0)
            return token

    def alive(self, token: int, elapsed: float) -> None:
        """A read found the tracked operation still running ``elapsed`` seconds after its start."""
        with self._lock:
            entry = self._running.get(token)
            if entry is not None:
                self._running[token] = (entry[0], elapsed)

    def untrack(self, token: int) -> None:
        with self._lock:
            self._running.pop(token, None)

    def count(self, aspect: str = "", model: str = "") -> int:
        """How many finished generations the distribution for (aspect, model) rests on."""
        with self._lock:
            key = (aspect, model)
            own = len(self._exact.get(key, ())) + len(self._spans.get(key, ()))
            return own if own >= 3 else len(self._all_exact) + len(self._all_spans)

    def distribution(self, aspect: str = "", model: str = "") -> LogNormal:
        """The blended distribution for an aspect and model (all generations when that one is new).

        A finished generation refits at once; reads of running ones refresh it at most every
        quarter second, which keeps the fit's cost off the event loop's critical path.
        """
        now = time.monotonic()
        key = (aspect, model)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == self._version and (not self._running or now - cached[1] < 0.25):
                return cached[2]
            version = self._version
            own = len(self._exact.get(key, ())) + len(self._spans.get(key, ())) >= 3
            exact = list(self._exact.get(key, ()) if own else self._all_exact)
            spans = list(self._spans.get(key, ()) if own else self._all_spans)
            spans += [(math.log(seen), math.inf) for k, seen in self._running.values()
                      if (k == key or not own) and seen > 0.05]
            spans += [(low, math.inf) for low in (self._lower.get(key, ()) if own else self._all_lower)]
        previous = cached[2] if cached is not None else None
        result = self._fit(exact, spans, previous) if exact or spans else self.prior
        with self._lock:
            self._cache[key] = (version, now, result)
        return result

    def _fit(self, exact: list[float], spans: list[tuple[float, float]], start: LogNormal | None) -> LogNormal:
        """Lognormal fit of exact log-durations and of spans known to hold one (EM), blended with
        the prior. EM starts from the previous fit, so its few iterations per refit add up to a
        converged fit while generations run (starting from the early finishers alone, it would
        stay biased short while most generations are still running)."""
        w, prior = self.prior_weight, self.prior
        n = len(exact) + len(spans)
        total, squares = math.fsum(exact), math.fsum(x * x for x in exact)
        mu, sigma = (start.mu, start.sigma) if start is not None else (prior.mu, prior.sigma)
        for _ in range(12 if spans else 1):
            s1, s2 = total, squares
            for low, high in spans:
                first, second = _truncated_moments(mu, sigma, low, high)
                s1 += first
                s2 += second
            mean_hat = s1 / n
            var_hat = max(0.0, s2 / n - mean_hat * mean_hat) if n > 1 else prior.sigma**2
            mu = (n * mean_hat + w * prior.mu) / (n + w)
            sigma = max(0.1, math.sqrt((n * var_hat + w * prior.sigma**2) / (n + w)))
        return LogNormal(mu, sigma)


#: The process's model: the engine feeds it from the store and from every finished generation.
DURATIONS = DurationModel()


@dataclass(frozen=True)
class ReadPlan:
    """When to read a generation of one kind: offsets in seconds from its start through the
    body of its distribution; past ``tail_start`` the policy backs off."""

    times: tuple[float, ...]
    tail_start: float
    expected_reads: float
    one_second_reads: float


def _tail_delay(elapsed: float, tail_start: float, interval: float, ceiling: float) -> float:
    """Back-off past the tail quantile: growing with the square of how far past it we are, up to
    ``ceiling``, but never more than a quarter of the time waited so far (a model that was wrong
    about a generation costs it a quarter more wait at most)."""
    grown = interval * max(1.0, elapsed / tail_start) ** 2
    return float(max(min(interval, elapsed), min(ceiling, grown, elapsed / 4)))


@functools.lru_cache(maxsize=128)
def _plan(mu: float, sigma: float, first_quantile: float, tail: float, min_interval: float,
          max_interval: float, tail_interval: float, share: float, alpha: float) -> ReadPlan:
    dist = LogNormal(mu, sigma)
    start, tail_start = dist.quantile(first_quantile), dist.quantile(tail)
    horizon = dist.quantile(0.999999)

    tail_reads, t = 0.0, tail_start
    while t < horizon:
        tail_reads += dist.survival(t)
        t += _tail_delay(t, tail_start, max_interval, tail_interval)
    # hazard ** -alpha and survival along the body, on a grid fine enough for both to vary little
    step = max(min_interval, (tail_start - start) / 600)
    grid = [(dist.hazard(t) ** -alpha, dist.survival(t))
            for t in (start + i * step for i in range(int((tail_start - start) / step) + 2))]

    def build(scale: float, stretch: bool) -> tuple[list[float], float]:
        """Intervals ``scale * hazard ** -alpha``: below ``max_interval`` (denser where completion
        is likeliest) or, to ``stretch`` a budget that cannot afford that, above it (sparser
        where completion is least likely)."""
        low, high = (max_interval, 2 * max_interval) if stretch else (min_interval, max_interval)
        times, reads, t = [start], 1.0, start
        while t < tail_start:
            shape, survived = grid[int((t - start) / step)]
            reads += survived
            t += min(high, max(low, scale * shape))
            times.append(t)
        return times, reads + tail_reads

    one_second = math.fsum(dist.survival(float(k)) for k in range(int(horizon) + 1))
    budget = share * one_second
    # Denser where completion is likeliest, down to the budget; or, when even reading every
    # max_interval would cost more than that, sparser where it is least likely (at most twice
    # max_interval apart: a short generation costs only a few reads anyway).
    stretch = build(0.0, True)[1] > budget
    low, high = 1e-4, 1e4  # the scale of the intervals: bisect (in logs) for the budget
    for _ in range(18):
        middle = math.sqrt(low * high)
        if build(middle, stretch)[1] > budget:
            low = middle
        else:
            high = middle
    times, reads = build(high, stretch)
    return ReadPlan(tuple(times), tail_start, reads, one_second)


@dataclass
class Watch:
    """What the live model learns from one wait: reads that found the operation running, then
    the span in which it finished."""

    model: DurationModel | None
    aspect: str = ""
    model_uri: str = ""
    token: int = -1
    last_seen: float = 0.0

    def alive(self, elapsed: float) -> None:
        """A read sent ``elapsed`` seconds after the start found the operation running."""
        if self.model is not None:
            self.last_seen = elapsed
            self.model.alive(self.token, elapsed)

    def finished(self, elapsed: float | None) -> None:
        """The read sent ``elapsed`` seconds after the start found it done (None: never known)."""
        if self.model is not None:
            self.model.untrack(self.token)
            if elapsed is not None:
                self.model.observe_between(self.last_seen, elapsed, self.aspect, self.model_uri)


@dataclass(frozen=True)
class AdaptivePolicy:
    """Spend a 1-second poller's reads (or fewer) where they buy the most latency.

    From the learned distribution of generation times, a plan of read times is worked out once
    per distribution: no read before the ``first_quantile``; then intervals proportional to
    ``hazard ** -alpha``, dense where a running generation is likeliest to finish (the
    mean-latency-optimal schedule under a read budget has alpha 0.5; 0.75 buys a lower median),
    scaled so the expected reads are ``share`` of a 1 s poller's (``unsure_share`` while the
    model rests on its prior, whose estimate of that is a guess too). Intervals stay under
    ``max_interval``, a little under a second so that, counting the few generations that finish
    before the first read or in the tail, latency stays below a 1 s poller's; when the budget
    cannot afford reads that close (a wide distribution), they stretch where completion is least
    likely. Past the ``tail`` quantile, reads back off up to ``tail_interval`` (see
    :func:`_tail_delay`).
    """

    model: DurationModel | None = None
    aspect: str = ""
    model_uri: str = ""
    fixed: LogNormal | None = None
    min_interval: float = 0.05
    max_interval: float = 0.95
    share: float = 0.95
    unsure_share: float = 0.85
    alpha: float = 0.75
    first_quantile: float = 0.02
    tail: float = 0.995
    tail_interval: float = 10.0

    #: Until the model has seen this many generations, the first read comes by ``first_read_by``
    #: seconds, in case the prior is wrong (one extra read at most).
    confident_after: int = 20
    first_read_by: float = 1.0

    #: Before any generation has finished (an empty store), the prior is only a guess: reads come
    #: every ``cold_interval`` up to ``cold_until`` seconds, so a generation much quicker than the
    #: prior is still seen within a second, then further apart (``cold_growth`` of the time waited,
    #: at most ``cold_max``), which costs fewer reads than a 1 s poller on any generation.
    cold_interval: float = 0.9
    cold_until: float = 3.6
    cold_growth: float = 0.45
    cold_max: float = 4.0
    #: The per-operation cap (see :meth:`earliest`): no generation costs more than this many times
    #: the reads a 1 s poller would spend on it, wherever the plan is dense.
    cap_ratio: float = 1.25
    #: Reads spent early (the cold schedule, a first read by ``first_read_by``) are repaid: an
    #: operation is never more than this many reads ahead of its plan's count.
    plan_slack: int = 4

    @property
    def distribution(self) -> LogNormal:
        """The current belief: the live model's (it keeps learning while we wait), or a fixed one."""
        if self.fixed is not None:
            return self.fixed
        return (self.model or DURATIONS).distribution(self.aspect, self.model_uri)

    def plan(self, dist: LogNormal | None = None, confident: bool | None = None) -> ReadPlan:
        """The read plan for a distribution (the current one by default); cached, since the
        distribution is rounded to what makes a difference to the plan."""
        dist = dist or self.distribution
        share = self.share if (self.confident if confident is None else confident) else self.unsure_share
        return _plan(round(dist.mu, 2), round(dist.sigma, 2), self.first_quantile, self.tail, self.min_interval,
                     self.max_interval, self.tail_interval, share, self.alpha)

    def watch(self) -> Watch:
        """Tell the live model an operation of this kind is running; it learns from the reads."""
        if self.fixed is not None:
            return Watch(None)
        model = self.model or DURATIONS
        return Watch(model, self.aspect, self.model_uri, model.track(self.aspect, self.model_uri))

    def _seen(self) -> float:
        """How many finished generations the model rests on (a fixed distribution: all it needs)."""
        if self.fixed is not None:
            return math.inf
        return (self.model or DURATIONS).count(self.aspect, self.model_uri)

    @property
    def confident(self) -> bool:
        """Whether the schedule rests on enough observed generations rather than on the prior."""
        return self._seen() >= self.confident_after

    @property
    def informed(self) -> bool:
        """Whether any generation (of this kind, or any while this kind is new) has finished yet."""
        return self._seen() > 0

    def next_delay(self, polls: int, elapsed: float) -> float:
        """The plan's (or, from an empty store, the cold schedule's) next interval, within the cap."""
        seen = self._seen()  # once per read: the model's count takes its lock
        confident = seen >= self.confident_after
        delay = self._planned(polls, elapsed, confident) if seen > 0 else self._cold(elapsed)
        if not confident and elapsed + self.cold_interval <= self.cold_until + 1e-9:
            delay = min(delay, self.cold_interval)
        return max(delay, self.earliest(polls + 1, confident) - elapsed)

    def earliest(self, n: int, confident: bool = True) -> float:
        """The soonest the n-th read of one operation may come (seconds after its start).

        With a learned model: so that whenever the operation finishes, counting the read that finds
        it done, it has cost at most ``cap_ratio`` times the ``ceil(T)`` reads a 1 s poller takes on
        a generation of T seconds. While unsure, the first read is not counted, so a generation
        much quicker than the prior is still seen within a second.
        """
        counted = n + 1 if confident else n
        return max(0.0, math.ceil(counted / self.cap_ratio - 1e-9) - 1.0)

    def _cold(self, elapsed: float) -> float:
        if elapsed + self.cold_interval <= self.cold_until + 1e-9:
            return self.cold_interval
        return min(self.cold_max, max(self.cold_interval, self.cold_growth * elapsed))

    def _planned(self, polls: int, elapsed: float, confident: bool) -> float:
        plan = self.plan(confident=confident)
        if polls == 0 and plan.times[0] > self.first_read_by and not confident:
            return max(0.0, self.first_read_by - elapsed)
        times = plan.times
        index = bisect.bisect_right(times, elapsed)
        if index == 0:
            return times[0] - elapsed
        if index < len(times):  # the plan's interval here: the plan moves as the model learns, so
            delay = times[index] - times[index - 1]  # its absolute times would bunch reads or skip them
            # never ahead of the plan's count: reads spent early (a cold start, a first read
            # by first_read_by) are repaid by skipping the plan's next ones
            ahead = polls - self.plan_slack
            return max(delay, times[ahead] - elapsed) if 0 <= ahead < len(times) else delay
        return _tail_delay(elapsed, plan.tail_start, self.max_interval, self.tail_interval)

    def priority(self, last_read: float, now: float) -> float:
        """The chance the operation finished between ``last_read`` and ``now`` (elapsed seconds)."""
        dist = self.distribution
        survived = dist.survival(last_read)
        if survived <= 1e-12:
            return 1.0
        return (survived - dist.survival(now)) / survived


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
