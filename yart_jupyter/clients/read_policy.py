"""When to read a generation of one kind: the adaptive policy, from the learned distribution of durations.

The official SDK reads every 10 s; most clients every 1-5 s. We do not read while completion is
unlikely, read densely while it is likely, and back off in the long tail, spending no more reads than
a 1-second poller would.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from ..core.steps import Steps, steps_now, steps_on_loop
from .durations import DURATIONS, DurationModel, LogNormal

#: Steps of the golden ratio's fraction spread any number of phases evenly over [0, 1).
_GOLDEN = (math.sqrt(5) - 1) / 2

#: The read schedule's unit of time, in seconds, for policies made from now on (see
#: :attr:`AdaptivePolicy.tick`). One second: the schedule is for the service's generations, which
#: take 10-20 s. The test suite's emulated generations take a tenth of a second, and it sets a
#: tenth here (``tests/conftest.py``), so the product's whole schedule runs at their pace.
TICK = 1.0


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
    ``ceiling``, but never more than a tenth of the time waited so far, so a model that is wrong
    about a generation (the service slowed down since the store learned it) costs it about what a
    1 s poller's wait would for the first ten seconds, and a tenth more wait at most after."""
    grown = interval * max(1.0, elapsed / tail_start) ** 2
    return float(max(min(interval, elapsed), min(ceiling, grown, elapsed / 10)))


#: What :func:`_plan` is given: a distribution's (mu, sigma) rounded, and the policy's settings.
_PlanKey = tuple[float, float, float, float, float, float, float, float, float]
#: Read plans worked out, newest last (a few kinds' distributions as their models move).
_PLANS: OrderedDict[_PlanKey, ReadPlan] = OrderedDict()
_PLANS_KEPT = 128
_PLANS_LOCK = threading.Lock()  # loops in other threads (the CLI's, a test's) share the plans


def _plan(key: _PlanKey) -> ReadPlan:
    """The read plan for ``key`` (see :func:`_plan_steps`), worked out at once unless known."""
    with _PLANS_LOCK:
        known = _PLANS.get(key)
        if known is not None:
            _PLANS.move_to_end(key)
    return known if known is not None else _keep(key, steps_now(_plan_steps(*key)))


async def _plan_ahead(key: _PlanKey) -> None:
    """Work out the read plan for ``key`` unless known, letting the loop run between its steps.

    A plan takes 0.1 to 5 ms of arithmetic (more the wider and longer the distribution), and a
    finish that moves the model asks for a new one while everything else waits; in steps, the
    kernel's loop runs between them. No turn is waited for (``take_turns=False``): the reads it
    plans should not queue behind pictures being decoded."""
    if key not in _PLANS:
        plan = await steps_on_loop(_plan_steps(*key), take_turns=False)
        _keep(key, plan)


def _keep(key: _PlanKey, plan: ReadPlan) -> ReadPlan:
    """Keep a plan worked out, forgetting the one used least recently beyond ``_PLANS_KEPT``."""
    with _PLANS_LOCK:
        _PLANS[key] = plan
        _PLANS.move_to_end(key)
        while len(_PLANS) > _PLANS_KEPT:
            _PLANS.popitem(last=False)
    return plan


#: The work of one step of :func:`_plan_steps`: grid points, or terms of the 1 s poller's reads.
_STEP = 250
#: The widest spread a read plan is worked out for, and the longest span it plans: a model learned
#: from wildly mixed durations (σ 3.5: an emulator's tenths of a second and the service's minutes
#: in one store) put the plan's horizon at 10^7 s, whose arithmetic kept a wait from its next read
#: for minutes; reads past this horizon come at the tail's pace.
PLAN_MAX_SIGMA = 1.5
PLAN_HORIZON = 6 * 3600.0


def _plan_steps(mu: float, sigma: float, first_quantile: float, tail: float, min_interval: float,
                max_interval: float, tail_interval: float, share: float, alpha: float) -> Steps[ReadPlan]:
    """The read plan for one distribution and the policy's settings, a step at a time (each well
    under a millisecond): the tail's reads, the body's grid, the 1 s poller's reads (the budget),
    then one step per round of the bisection that scales the intervals to it."""
    dist = LogNormal(mu, min(sigma, PLAN_MAX_SIGMA))
    horizon = min(dist.quantile(0.999999), PLAN_HORIZON)
    start, tail_start = min(dist.quantile(first_quantile), horizon), min(dist.quantile(tail), horizon)

    tail_reads, t, counted = 0.0, tail_start, 0
    while t < horizon:
        tail_reads += dist.survival(t)
        t += _tail_delay(t, tail_start, max_interval, tail_interval)
        counted += 1
        if counted % _STEP == 0:  # a wide distribution's tail runs for hours, reads 10 s apart
            yield
    # hazard ** -alpha and survival along the body, on a grid fine enough for both to vary little
    step = max(min_interval, (tail_start - start) / 600)
    grid = [start + i * step for i in range(int((tail_start - start) / step) + 2)]
    shapes: list[float] = []
    survivals: list[float] = []
    for first in range(0, len(grid), _STEP):
        yield
        for t in grid[first:first + _STEP]:
            shapes.append(dist.hazard(t) ** -alpha)
            survivals.append(dist.survival(t))

    def walk(scale: float, low: float, high: float, times: list[float] | None = None) -> Steps[float]:
        """The reads of the plan with intervals ``scale * hazard ** -alpha`` between ``low`` and
        ``high``, its times appended to ``times`` when given (the bisection only counts them)."""
        reads, t, walked = 1.0, start, 0
        while t < tail_start:
            cell = int((t - start) / step)
            reads += survivals[cell]
            t += min(high, max(low, scale * shapes[cell]))
            if times is not None:
                times.append(t)
            walked += 1
            if walked % (4 * _STEP) == 0:
                yield
        return reads + tail_reads

    sums = [1.0]  # a 1 s poller's reads: the chance a generation still runs at each second
    last = int(horizon)
    for first in range(1, last + 1, 4 * _STEP):
        yield
        sums.append(math.fsum([dist.survival(float(k)) for k in range(first, min(first + 4 * _STEP, last + 1))]))
    one_second = math.fsum(sums)
    budget = share * one_second
    # Intervals below max_interval (denser where completion is likeliest), scaled down to the
    # budget; or, when even reading every max_interval would cost more than that, above it (at
    # most twice max_interval apart, sparser where completion is least likely: a short generation
    # costs only a few reads anyway).
    yield
    stretch = (yield from walk(0.0, max_interval, 2 * max_interval)) > budget
    low, high = (max_interval, 2 * max_interval) if stretch else (min_interval, max_interval)
    small, large = 1e-4, 1e4  # the scale of the intervals: bisect (in logs) for the budget
    for _ in range(18):
        yield
        middle = math.sqrt(small * large)
        if (yield from walk(middle, low, high)) > budget:
            small = middle
        else:
            large = middle
    yield
    times = [start]
    reads = yield from walk(large, low, high, times)
    return ReadPlan(tuple(times), tail_start, reads, one_second)


@dataclass
class Watch:
    """What the live model learns from one wait: reads that found the operation running, then
    the span in which it finished."""

    model: DurationModel | None
    aspect: str = ""
    model_uri: str = ""
    token: int = -1
    #: How many others of its kind were running when it started (its place in a burst).
    order: int = 0
    last_seen: float = 0.0
    ended: bool = False

    def alive(self, elapsed: float) -> None:
        """A read sent ``elapsed`` seconds after the start found the operation running."""
        if self.model is not None:
            self.last_seen = elapsed
            self.model.alive(self.token, elapsed)

    def finished(self, elapsed: float | None) -> None:
        """The read sent ``elapsed`` seconds after the start found it done (None: never known).
        A wait ends once: later calls (a clean-up after the real end) change nothing."""
        if self.ended:
            return
        self.ended = True
        if self.model is not None:
            self.model.untrack(self.token)
            if elapsed is not None:
                self.model.observe_between(self.last_seen, elapsed, self.aspect, self.model_uri, self.token)


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

    From an empty store, operations started together share the work of finding out: one in
    ``scout_every`` reads early (see ``cold_interval``), the others later, and the first finish
    any of them sees replans them all (:meth:`.scheduler.PollScheduler._replan`).
    """

    model: DurationModel | None = None
    aspect: str = ""
    model_uri: str = ""
    fixed: LogNormal | None = None
    min_interval: float = 0.05
    max_interval: float = 0.95
    share: float = 0.95
    unsure_share: float = 0.95
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
    #: Where this operation's growing cold reads fall: ``cold_growth`` times 0.5 to 1.5 (random per
    #: operation; still at most ``cold_max``). Thirty generations started together would otherwise
    #: all be read at the same moments seconds apart, and the first ones to finish would all wait
    #: out the same gap; spread, some are read soon after they finish, and the first one seen
    #: brings the others' reads forward (see :meth:`.scheduler.PollScheduler._replan`).
    cold_phase: float = field(default_factory=random.random)
    #: One operation in ``scout_every`` of a kind running together from an empty store is a scout
    #: (the first of a burst, or one started alone, always is): it reads on the cold schedule from
    #: the start. The others read first at ``cold_until`` times 0.5 to 1.5 (by ``cold_phase``):
    #: thirty generations of one kind are thirty draws from one distribution, so a few scouts see
    #: a quick kind within about a second (then everyone is replanned), and the reads the rest save
    #: buy the plan after the first finish.
    scout_every: int = 5
    scout: bool = True
    #: The per-operation cap (see :meth:`earliest`): no generation costs more than this many times
    #: the reads a 1 s poller would spend on it, wherever the plan is dense.
    cap_ratio: float = 1.25
    #: Reads spent early (the cold schedule, a first read by ``first_read_by``) are repaid: an
    #: operation is never more than this many reads ahead of its plan's count.
    plan_slack: int = 4
    #: The schedule's unit of time in seconds (:data:`TICK` when made): every interval above,
    #: the plan and the cap count in ticks, against a poller reading once a tick. The settings
    #: are the service's, so one tick is one second; a tenth runs the same schedule ten times as
    #: fast, for generations ten times as quick.
    tick: float = field(default_factory=lambda: TICK)

    @property
    def distribution(self) -> LogNormal:
        """The current belief: the live model's (it keeps learning while we wait), or a fixed one."""
        if self.fixed is not None:
            return self.fixed
        return (self.model or DURATIONS).distribution(self.aspect, self.model_uri)

    def plan(self, dist: LogNormal | None = None, confident: bool | None = None) -> ReadPlan:
        """The read plan for a distribution (the current one by default), its times in ticks;
        cached, since the distribution is rounded to what makes a difference to the plan."""
        return _plan(self._plan_key(dist, confident))

    async def prepare(self) -> None:
        """Work out the plan :meth:`next_delay` is about to need, letting the loop run meanwhile
        (the scheduler asks before it asks for a delay; without it, the plan is worked out at once)."""
        for _ in range(3):  # the model may move again while it is worked out: then once more
            seen = self._seen()
            if seen <= 0:
                return
            key = self._plan_key(None, seen >= self.confident_after)
            if key in _PLANS:
                return
            await _plan_ahead(key)

    def _plan_key(self, dist: LogNormal | None, confident: bool | None) -> _PlanKey:
        dist = dist or self.distribution
        if self.tick != 1.0:  # the same distribution, counted in ticks
            dist = LogNormal(dist.mu - math.log(self.tick), dist.sigma)
        share = self.share if (self.confident if confident is None else confident) else self.unsure_share
        return (round(dist.mu, 2), round(dist.sigma, 2), self.first_quantile, self.tail, self.min_interval,
                self.max_interval, self.tail_interval, share, self.alpha)

    def watch(self) -> Watch:
        """Tell the live model an operation of this kind is running; it learns from the reads."""
        if self.fixed is not None:
            return Watch(None)
        model = self.model or DURATIONS
        token, order = model.track(self.aspect, self.model_uri)
        return Watch(model, self.aspect, self.model_uri, token, order)

    def placed(self, watch: Watch) -> AdaptivePolicy:
        """This policy for the operation ``watch`` follows: a scout or not, by its place in a burst,
        and its cold reads' phase moved on by that place (golden-ratio steps), so one policy given
        to a whole burst (``poll_policy=``) still spreads its reads as one policy per operation does."""
        scout = watch.order % max(1, self.scout_every) == 0
        return replace(self, scout=scout, cold_phase=(self.cold_phase + watch.order * _GOLDEN) % 1.0)

    def _seen(self) -> float:
        """How many finished generations the model rests on (a fixed distribution: all it needs)."""
        if self.fixed is not None:
            return math.inf
        return (self.model or DURATIONS).count(self.aspect, self.model_uri)

    @property
    def confident(self) -> bool:
        """Whether the schedule rests on enough observed generations rather than on the prior."""
        return self._seen() >= self.confident_after


    def next_delay(self, polls: int, elapsed: float) -> float:
        """The plan's (or, from an empty store, the cold schedule's) next interval, within the cap."""
        return self.tick * self._next_ticks(polls, elapsed / self.tick)

    def _next_ticks(self, polls: int, elapsed: float) -> float:
        """:meth:`next_delay` counted in ticks."""
        seen = self._seen()  # once per read: the model's count takes its lock
        confident = seen >= self.confident_after
        if seen > 0:
            delay = self._planned(polls, elapsed, confident)
        elif self.scout or polls > 0:
            delay = self._cold(elapsed)
        else:  # not a scout: the first read once the scouts have had their chance to see a quick one
            delay = self.cold_until * (0.5 + self.cold_phase) - elapsed
        guarded = self.scout or seen > 0
        if guarded and not confident and elapsed + self.cold_interval <= self.cold_until + 1e-9:
            delay = min(delay, self.cold_interval)
        return max(delay, self.earliest(polls + 1, confident) - elapsed)

    def earliest(self, n: int, confident: bool = True) -> float:
        """The soonest the n-th read of one operation may come (ticks after its start).

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
        grown = min(self.cold_max, max(self.cold_interval, self.cold_growth * elapsed))
        return min(self.cold_max, max(self.cold_interval, grown * (0.5 + self.cold_phase)))

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
