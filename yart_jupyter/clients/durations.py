"""How long generations take: a log-normal model learned per aspect and model, from the store and the session.

The read policy plans its reads from it; the engine feeds it every finished generation and, once,
the store's history; the status line's "time left" reads it too.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


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

    def track(self, aspect: str, model: str) -> tuple[int, int]:
        """An operation of this kind is running: until it ends, each read that finds it still
        running (:meth:`alive`) is evidence too (a right-censored observation). Returns its token
        and how many others of the kind were running when it started (a burst's order)."""
        with self._lock:
            token = next(self._tokens)
            before = sum(1 for key, _ in self._running.values() if key == (aspect, model))
            self._running[token] = ((aspect, model), 0.0)
            return token, before

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
        the prior. EM starts from the previous fit, so its few iterations per refit (four; twelve
        from the prior) add up to a converged fit while generations run (starting from the early
        finishers alone, it would stay biased short while most generations are still running)."""
        w, prior = self.prior_weight, self.prior
        n = len(exact) + len(spans)
        total, squares = math.fsum(exact), math.fsum(x * x for x in exact)
        mu, sigma = (start.mu, start.sigma) if start is not None else (prior.mu, prior.sigma)
        for _ in range((4 if start is not None else 12) if spans else 1):
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
