"""How long generations take: a log-normal model learned per aspect and model, from the store and the session.

The read policy plans its reads from it; the engine feeds it every finished generation and, once,
the store's history; the status line's "time left" reads it too. The Images API's answer times
are a model of their own (``ANSWERS``): no read is planned from them, only the time left.
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


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
#: How many observations the prior's spread is worth.
PRIOR_WEIGHT = 2
#: How many observations the prior's median is worth (at most ``PRIOR_WEIGHT``): kinds differ far more in their medians
#: (a second to minutes) than one kind's generations differ among themselves, so the guess of 12 s
#: only steadies a fit on the first few; at full weight it dragged a kind learned from a burst of
#: thirty toward 12 s (a 60 s kind's median by a tenth, a 2 s kind's up by an eighth).
PRIOR_MEDIAN_WEIGHT = 0.25
#: A kind rests on its own generations once this many have finished; on all kinds' until then.
OWN_AFTER = 3
#: A kind's newest generations are checked against the rest: when the ``CHANGE_WINDOW`` started last
#: (finished, or running and bounded by their reads), fitted alone, put the median ``CHANGE_ALARM``
#: standard errors or more from the fit on all that is kept, the service has changed speed. While it
#: stays the same this (almost) never fires and every kept generation weighs alike.
CHANGE_WINDOW = 20
CHANGE_ALARM = 5.0
#: How much likelier the newest fit must make a piece of evidence for it to mark where a change began.
CHANGE_EVIDENT = 20.0
#: After a change at least this many of the newest finished generations are kept (so the kind keeps a
#: fit of its own).
CHANGE_KEEP = 5

_Key = tuple[str, str]
#: One piece of evidence in log-seconds: finished within (low, high]; low == high when known exactly,
#: high infinite for a generation last seen running.
_Span = tuple[float, float]
#: A piece of evidence and when its generation started, in order of starts (a store's history before
#: everything the process saw itself).
_Piece = tuple[int, float, float]


class DurationModel:
    """Generation times learned per (aspect, model), blended with a prior; thread-safe.

    A generation's duration is rarely known exactly: it finished somewhere between the last read
    that found it running and the read that found it done, and one still running has only a lower
    bound. All three kinds are kept as spans, in the order the generations started, and fitted by
    EM, so a coarse first read does not pass for a quick generation and a detection delay does not
    pass for a slow one. When a kind's latest generations disagree with the rest (:meth:`_change`),
    the rest is forgotten, so the model keeps up with a service that got slower or quicker.
    """

    def __init__(self, prior: LogNormal = PRIOR, prior_weight: float = PRIOR_WEIGHT, keep: int = 500,
                 median_weight: float = PRIOR_MEDIAN_WEIGHT) -> None:
        self.prior = prior
        self.prior_weight = prior_weight
        self.median_weight = median_weight
        self.keep = keep
        self._evidence: dict[_Key, list[_Piece]] = {}
        self._all: list[_Piece] = []
        self._lock = threading.Lock()
        self._loaded: set[str] = set()
        self._version = 0
        self._cache: dict[_Key, tuple[int, float, LogNormal]] = {}
        self._counts: dict[_Key, tuple[int, int]] = {}  # finished generations, by version
        self._running: dict[int, tuple[_Key, float]] = {}
        self._tokens = itertools.count()
        self._oldest = 0  # the start order given to the newest of a store's history, less one

    def _record(self, key: _Key, pieces: list[_Piece]) -> None:
        """Keep evidence for its kind and for all generations, in order of starts; the generations
        started first beyond ``keep`` are dropped."""
        with self._lock:
            for bucket in (self._evidence.setdefault(key, []), self._all):
                for piece in pieces:
                    bisect.insort(bucket, piece)
                del bucket[: max(0, len(bucket) - self.keep)]
            self._version += 1

    @staticmethod
    def _span(low: float, high: float | None) -> _Span | None:
        """The evidence a wait gave, in log-seconds (None when it says nothing): finished after
        ``low`` and by ``high`` seconds; ``high`` None for one still running when last seen."""
        if high is None:
            return (math.log(low), math.inf) if low > 0 else None
        if not high > 0:
            return None
        if low >= high or (low > 0 and high - low <= 0.1 * high):  # narrow enough to count as exact
            exact = math.log(math.sqrt(low * high) if low < high else high)
            return (exact, exact)
        return (math.log(low) if low > 0 else -math.inf, math.log(high))

    def _learn(self, low: float, high: float | None, aspect: str, model: str, token: int | None) -> None:
        """Keep one wait's evidence, as started when ``token`` was given (now when None)."""
        span = self._span(low, high)
        if span is not None:
            self._record((aspect, model), [(next(self._tokens) if token is None else token, *span)])

    def observe(self, seconds: float, aspect: str = "", model: str = "") -> None:
        """Learn from one finished generation whose duration is known."""
        self._learn(seconds, seconds, aspect, model, None)

    def observe_between(self, low: float, high: float, aspect: str = "", model: str = "",
                        token: int | None = None) -> None:
        """Learn from a generation that finished after ``low`` and by ``high`` seconds (``token``:
        from :meth:`track` when it started; without one it counts as started now)."""
        self._learn(low, high, aspect, model, token)

    def observe_at_least(self, low: float, aspect: str = "", model: str = "") -> None:
        """Learn from a generation last seen running ``low`` seconds after its start (never collected
        by that wait): a lower bound, fitted as such, and not counted as a finished generation."""
        self._learn(low, None, aspect, model, None)

    def learn_once(self, source: str, history: Callable[[], Iterable[tuple[float, float | None, str, str]]]) -> None:
        """Learn once per ``source`` (a store path) from what its waits saw, newest first: (low, high,
        aspect, model) spans, ``high`` None for a generation still running when last seen — the same
        kinds of evidence a live wait gives, so the model read back at start-up is the one it had.
        It counts as started before anything this process has seen itself."""
        with self._lock:
            if source in self._loaded:
                return
            self._loaded.add(source)
        spans = [(span, (aspect, model)) for low, high, aspect, model in history()
                 if (span := self._span(low, high)) is not None]
        by_kind: dict[_Key, list[_Piece]] = {}
        with self._lock:
            for span, key in spans:
                self._oldest -= 1
                by_kind.setdefault(key, []).append((self._oldest, *span))
        for key, pieces in by_kind.items():
            self._record(key, pieces)

    def track(self, aspect: str, model: str) -> tuple[int, int]:
        """An operation of this kind is running: until it ends, each read that finds it still
        running (:meth:`alive`) is evidence too (a right-censored observation). Returns its token
        (its place in the order of starts) and how many others of the kind were running when it
        started (a burst's order)."""
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
        key = (aspect, model)
        with self._lock:  # asked before every read: counted again only when the evidence changed
            counted = self._counts.get(key)
            if counted is None or counted[0] != self._version:
                counted = self._counts[key] = (self._version, _finished(self._basis(key)[1]))
            return counted[1]

    def _basis(self, key: _Key) -> tuple[bool, list[_Piece]]:
        """What the distribution of a kind rests on (the caller holds the lock): its own evidence once
        ``OWN_AFTER`` of its generations have finished (True), all kinds' until then (False)."""
        own = self._evidence.get(key, [])
        return (True, own) if _finished(own) >= OWN_AFTER else (False, self._all)

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
            own, basis = self._basis(key)
            kept = list(basis)
            running = [(token, math.log(seen), math.inf) for token, (k, seen) in self._running.items()
                       if (k == key or not own) and seen > 0.05]
        previous = cached[2] if cached is not None else None
        result = self._fit(kept + running, previous) if kept or running else self.prior
        if own and len(kept) >= 2 * CHANGE_WINDOW:
            since = self._change(kept, running, result)
            if since is not None:
                self._forget(key, since)
                result = self._fit([piece for piece in kept if piece[0] >= since] + running, None)
        with self._lock:
            self._cache[key] = (version, now, result)
        return result

    def _change(self, kept: list[_Piece], running: list[_Piece], fitted: LogNormal) -> int | None:
        """When the service changed speed (the start order from which evidence is kept), or None:
        the ``CHANGE_WINDOW`` generations of the kind started last (finished, or running and bounded
        by their reads; at least half of them finished), fitted alone, put the median ``CHANGE_ALARM``
        standard errors (of as many generations as finished) or more from ``fitted`` (the fit on
        everything). The change began at the first of them the newest fit makes ``CHANGE_EVIDENT``
        times likelier (the window's first when none is that clear), or earlier, so that the
        ``CHANGE_KEEP`` started last are kept. Taking the latest *started*, not the latest finished,
        keeps the test fair to bursts: the last of a burst to finish are its slowest, the last
        started a fair draw."""
        window = sorted(kept[-CHANGE_WINDOW:] + running)[-CHANGE_WINDOW:]
        finished = _finished(window)
        if finished < CHANGE_WINDOW // 2:  # mostly bounds: a fit on them alone drifts long
            return None
        recent = self._fit(window, fitted, steps=12, prior_weight=0)
        if abs(recent.mu - fitted.mu) * math.sqrt(finished) < CHANGE_ALARM * fitted.sigma:
            return None
        changed = [order for order, low, high in window
                   if _chance(recent, (low, high)) > CHANGE_EVIDENT * _chance(fitted, (low, high))]
        return min(changed[0] if changed else window[0][0], kept[-CHANGE_KEEP][0])

    def _forget(self, key: _Key, since: int) -> None:
        """Drop the evidence from generations started before ``since``: the kind's, and all kinds'
        (what a new kind and the status line's time left borrow); evidence that came in meanwhile
        is judged alike."""
        with self._lock:
            for bucket in (self._evidence.setdefault(key, []), self._all):
                bucket[:] = [piece for piece in bucket if piece[0] >= since]
            self._version += 1

    def _fit(self, evidence: list[_Piece], start: LogNormal | None, steps: int = 0,
             prior_weight: float | None = None) -> LogNormal:
        """Lognormal fit of spans of log-durations (exact ones as spans of width 0) by EM, blended
        with the prior. EM starts from the previous fit, so its few iterations per refit (four;
        twelve from the prior, or ``steps``) add up to a converged fit while generations run (starting
        from the early finishers alone, it would stay biased short while most are still running).
        The prior's median weighs ``median_weight`` generations, its spread ``prior_weight``."""
        w, prior = self.prior_weight if prior_weight is None else prior_weight, self.prior
        exact = [low for _, low, high in evidence if low == high]
        spans = [(low, high) for _, low, high in evidence if low != high]
        w_median = min(w, self.median_weight)
        n = len(evidence)
        total, squares = math.fsum(exact), math.fsum(x * x for x in exact)
        mu, sigma = (start.mu, start.sigma) if start is not None else (prior.mu, prior.sigma)
        for _ in range((steps or (4 if start is not None else 12)) if spans else 1):
            s1, s2 = total, squares
            for low, high in spans:
                first, second = _truncated_moments(mu, sigma, low, high)
                s1 += first
                s2 += second
            mean_hat = s1 / n
            var_hat = max(0.0, s2 / n - mean_hat * mean_hat) if n > 1 else prior.sigma**2
            mu = (n * mean_hat + w_median * prior.mu) / (n + w_median)
            sigma = max(0.1, math.sqrt((n * var_hat + w * prior.sigma**2) / (n + w)))
        return LogNormal(mu, sigma)


def _chance(dist: LogNormal, span: _Span) -> float:
    """How likely ``dist`` makes one piece of evidence (its density where the duration is known)."""
    low, high = span
    if low == high:
        return math.exp(-0.5 * ((low - dist.mu) / dist.sigma) ** 2) / dist.sigma
    a, b = (low - dist.mu) / dist.sigma, (high - dist.mu) / dist.sigma
    return 0.5 * (math.erfc(a / _SQRT2) - math.erfc(b / _SQRT2))


def _finished(evidence: Iterable[_Piece]) -> int:
    """How many pieces of evidence are finished generations (not lower bounds)."""
    return sum(1 for _, _, high in evidence if high != math.inf)


#: The process's model: the engine feeds it from the store and from every finished generation.
DURATIONS = DurationModel()
#: The Images API's answer times (its picture comes in the answer to one request), learned apart
#: from the operations': the status line's time left for a synchronous request reads it. Its prior
#: is the answer time reported for Alice AI ART in 2026, about 3-6 s.
ANSWERS = DurationModel(prior=LogNormal.from_median(4.5, 0.3))
