"""``bench/simulate.py``: the latency bench's bursts in virtual time, hundreds of them in a minute.

The real waiting path (``wait_for_operation``, the loop's ``PollScheduler``, ``AdaptivePolicy`` and a
``DurationModel``) runs on an event loop whose clock jumps to its next timer instead of sleeping, and
each read answers after a fixed round trip. Bursts of 30 are drawn from the bench's distributions and
judged by the bench's own targets, so this prints how often *one run* of the bench can meet each of
them: with 30 samples a run's median lands well either side of the policy's, and a target set close
to it passes on some runs and fails on others whatever the code (see docs/performance.md).

    .venv/bin/python bench/simulate.py --runs 150 [--spread-runs 30] [--bench-sample [SEED]] [--out results.md]

``--bench-sample`` replays the very generations ``make bench``'s rows see (its emulators are seeded,
so those are the same every time it runs; ``--bench-sample SEED``: those of ``bench/run.py --seed
SEED``, and the bench's warm store) instead of fresh draws: what the bench's own verdicts depend on.

What-ifs, without editing the package: ``--policy '{"cold_max": 2.5}'`` gives our policy other
settings (any of ``AdaptivePolicy``'s fields), and ``--spec lognormal:30:0.3:1:300`` draws the
chosen rows' generations from another distribution (the emulator's ``--duration`` syntax), to see
whether a setting that helps the bench's 15 s generations holds on others.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import random
import selectors
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any
from unittest import mock

from run import (  # type: ignore[import-not-found]  # bench/ is the script's folder
    BURST,
    DEMO,
    DISTRIBUTIONS,
    MODEL_URI,
    SAMPLE_SEED,
    SPREAD_JOBS,
    emulator_client,
    emulator_times,
    latency_emulator,
    start_offsets,
    warmed,
)
from table import Table, pct  # type: ignore[import-not-found]

import yart_jupyter.clients.durations
import yart_jupyter.clients.limits
import yart_jupyter.clients.scheduler
import yart_jupyter.clients.waiting
from yart_jupyter.clients.durations import DurationModel, LogNormal
from yart_jupyter.clients.limits import SlidingWindowLimiter
from yart_jupyter.clients.operation import Operation
from yart_jupyter.clients.polling import FixedPolicy, PollPolicy
from yart_jupyter.clients.read_policy import AdaptivePolicy
from yart_jupyter.clients.waiting import Progress, wait_for_operation
from yart_jupyter.emulator import Duration

#: What the bench sees on loopback: the start request's answer, and each read's.
START_RTT, READ_RTT = 0.03, 0.004
#: Runs of the burst and cold-start rows in ``make bench`` (``bench/run.py --runs 3``).
BENCH_RUNS = 3


class _Clock:
    """Virtual seconds: advanced only by the loop's waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Selector(selectors.SelectSelector):
    """A selector that never waits: a wait for ``timeout`` moves the clock on by that much, and each
    turn of the loop by a microsecond at least (as a real one takes), so that a timer set a rounding
    error ahead is reached rather than spun on."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("virtual time: nothing is scheduled and nothing can wake the loop")
        self.clock.now += max(1e-6, timeout)
        return []


class _Loop(asyncio.SelectorEventLoop):
    """An event loop on the virtual clock."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__(_Selector(clock))
        self.clock = clock

    def time(self) -> float:
        return self.clock.now


class _Time:
    """The ``time`` module as the waiting path sees it in virtual time: ``monotonic`` is the clock."""

    def __init__(self, clock: _Clock) -> None:
        self.monotonic = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


#: The modules of the waiting path that read the clock (the scheduler, the waiter, the duration
#: model's refresh, the quota limiter): in virtual time they read the loop's.
WAITING_PATH = (yart_jupyter.clients.waiting, yart_jupyter.clients.scheduler, yart_jupyter.clients.durations,
                yart_jupyter.clients.limits)


@contextlib.contextmanager
def virtual_time() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop on a virtual clock, which the waiting path's ``time.monotonic`` reads too."""
    clock = _Clock()
    loop = _Loop(clock)
    try:
        with contextlib.ExitStack() as stack:
            for module in WAITING_PATH:
                stack.enter_context(mock.patch.object(module, "time", _Time(clock)))
            yield loop
    finally:
        loop.close()


@dataclass(frozen=True)
class Phased:
    """A 1 s poller whose reads fall at another phase of the second: what the bench's fixed poller
    would measure on the same generations had its reads happened to fall elsewhere."""

    phase: float  # in [0, 1)

    def next_delay(self, polls: int, elapsed: float) -> float:
        return 0.5 + self.phase if polls == 0 else 1.0  # as many reads as the bench's poller, on average


#: One run of one poller: each generation's (detection lag after it was ready, reads), by operation.
Sample = dict[str, tuple[float, int]]


async def scenario(durations: list[float], offsets: list[float], pollers: dict[str, Callable[[], PollPolicy]],
                   prefix: str = "", read_rtt: float = READ_RTT) -> dict[str, Sample]:
    """Start one generation per duration, each ``offsets[i]`` seconds in, and watch each with every
    poller, as the bench's ``scenario`` does; each read is answered ``read_rtt`` seconds after it is sent."""
    loop = asyncio.get_running_loop()
    limiter = SlidingWindowLimiter(1_000_000, 1.0)
    seen: dict[str, Sample] = {name: {} for name in pollers}

    async def watch(op: str, started: float, ready: float, name: str) -> None:
        reads = 0

        def progress(event: Progress) -> None:
            nonlocal reads
            if event.phase == "done":
                reads = event.polls + 1

        async def read(operation_id: str, retried: Callable[[int, str, float], None]) -> Operation:
            arrives = loop.time() + read_rtt / 2  # the service answers what it sees on arrival
            await asyncio.sleep(read_rtt)
            return Operation(operation_id, done=arrives >= ready)

        await wait_for_operation(read, op, policy=pollers[name](), limiter=limiter, limit=1e6, started=started,
                                 on_progress=progress)
        seen[name][op] = (loop.time() - ready, reads)

    async def job(i: int, duration: float) -> None:
        await asyncio.sleep(offsets[i])
        started = loop.time()
        await asyncio.sleep(START_RTT)  # the start request; the service's clock starts on its arrival
        ready = started + START_RTT / 2 + duration
        await asyncio.gather(*(watch(f"{prefix}op{i}", started, ready, name) for name in pollers))

    await asyncio.gather(*(job(i, d) for i, d in enumerate(durations)))
    return seen


def _lags(sample: Sample, q: float) -> float:
    return pct([lag for lag, _ in sample.values()], q)


def _reads(sample: Sample) -> float:
    return statistics.fmean(n for _, n in sample.values())


def _most_reads(ours: Sample, base: Sample) -> float:
    """The most reads one operation took against the 1 s poller's on it, over those it read 5 times or more."""
    return max((n / base[op][1] for op, (_, n) in ours.items() if base[op][1] >= 5), default=0.0)


def _no_worse(ours: Sample, base: Sample) -> bool:
    """The learned rows' check: p50 and p95 within 20 ms of the 1 s poller's, one op at most ×1.3 its reads."""
    return (_lags(ours, 0.5) <= _lags(base, 0.5) + 0.02 and _lags(ours, 0.95) <= _lags(base, 0.95) + 0.02
            and _most_reads(ours, base) <= 1.3)


@dataclass(frozen=True)
class Target:
    """One of the bench's latency targets, as ``bench/run.py``'s ``report`` judges it: the latency
    part here (``judge``: ours against the 1 s poller's), reads ≤ the 1 s poller's unless not ``reads``."""

    scenario: str
    spec: str
    store: str  # "empty", or "warm": the bench's 40 earlier generations
    judge: Callable[[Sample, Sample], bool]
    label: str
    jobs: int = BURST
    spread: float = 0.0  # starts spread evenly at random over this many seconds
    reads: bool = True
    burst: bool = True  # run --runs times (else --spread-runs: a minute of 300 generations is slower)
    #: In ``make bench``, how many generations its emulator starts before this row's first run (the
    #: rows over a minute come first, and before the cold start the three tight bursts; ``--only
    #: burst,cold`` skips the rows over a minute, so its bursts see other samples).
    bench_after: int = 0


TARGETS = [
    Target("wide burst (30 at once), empty store", DISTRIBUTIONS["wide"], "empty",
           lambda o, b: _lags(o, 0.5) <= 1.05 * _lags(b, 0.5), "p50 ≤ ×1.05 of the 1 s poller's",
           bench_after=SPREAD_JOBS),
    Target("cold start, 30 at once, empty store", DISTRIBUTIONS["tight"], "empty",
           lambda o, b: _lags(o, 0.5) <= 0.35 and _lags(o, 0.95) <= _lags(b, 0.95),
           "p50 ≤ 0.35 s, p95 ≤ the 1 s poller's", bench_after=SPREAD_JOBS + BENCH_RUNS * BURST),
    Target("cold start, 30 at once, warm store", DISTRIBUTIONS["tight"], "warm",
           lambda o, b: _lags(o, 0.5) <= 0.3, "p50 ≤ 0.3 s", bench_after=SPREAD_JOBS + BENCH_RUNS * BURST),
    Target("tight (300 jobs over a minute), learned", DISTRIBUTIONS["tight"], "warm",
           lambda o, b: _no_worse(o, b) and _lags(o, 0.5) <= 0.3 and _lags(o, 0.95) <= 1.0,
           "p50 ≤ 0.3 s, p95 ≤ 1.0 s, no worse, one op ≤ ×1.3", jobs=SPREAD_JOBS, spread=60.0, burst=False),
    Target("tight (300 jobs over a minute), empty store", DISTRIBUTIONS["tight"], "empty",
           lambda o, b: _lags(o, 0.5) <= 0.35, "p50 ≤ 0.35 s", jobs=SPREAD_JOBS, spread=60.0, burst=False),
    Target("wide (300 jobs over a minute), learned", DISTRIBUTIONS["wide"], "warm", _no_worse,
           "no worse, one op ≤ ×1.3", jobs=SPREAD_JOBS, spread=60.0, burst=False),
    Target("wide (300 jobs over a minute), empty store", DISTRIBUTIONS["wide"], "empty",
           lambda o, b: _lags(o, 0.5) <= 1.05 * _lags(b, 0.5), "p50 ≤ ×1.05 of the 1 s poller's",
           jobs=SPREAD_JOBS, spread=60.0, burst=False),
    Target("demo (13 images over 20 s, empty store)", DEMO, "empty",
           lambda o, b: _lags(o, 1.0) <= 1.0, "every image ≤ 1 s after ready", jobs=13, spread=20.0, reads=False,
           burst=False),
]


def truth(duration: Duration) -> LogNormal:
    """The lognormal the bench draws from (its clipping aside)."""
    return LogNormal(math.log(duration.a), duration.b)


class ToldOnceOneFinished(DurationModel):
    """A live model that, once a generation of the kind has finished, believes the true distribution:
    our policy's cold start followed by a perfect model, which separates what learning costs after
    the first finish from what the cold start costs before it."""

    def __init__(self, truth: LogNormal) -> None:
        super().__init__()
        self.truth = truth

    def distribution(self, aspect: str = "", model: str = "") -> LogNormal:
        learned = super().distribution(aspect, model)
        return self.truth if self.count(aspect, model) > 0 else learned


@functools.lru_cache(maxsize=8)
def bench_draws(spec: str, count: int, seed: int = SAMPLE_SEED) -> tuple[float, ...]:
    """The first ``count`` durations the bench's emulator for ``spec`` draws (with ``seed``), in the
    order the generations are started: started here on an emulator run as the bench runs it, then
    read back (its draws depend only on how many starts came before)."""

    async def started(url: str) -> tuple[float, ...]:
        async with emulator_client(url) as client:
            ids = [await client.start(client.build_request("latency", seed=i + 1)) for i in range(count)]
        times = await emulator_times(url)
        return tuple(times[op]["ready_at"] - times[op]["created"] for op in ids)

    with latency_emulator(spec, seed) as url:
        return asyncio.run(started(url))


def bench_generations(target: Target, run: int = 0, seed: int = SAMPLE_SEED) -> tuple[list[float], list[float]]:
    """The generations the bench's row for ``target`` sees, the same every time the bench runs:
    its start offsets, and the durations its emulator draws for them. A row spread over time sees
    its emulator's first starts; a burst row in its ``run``-th run (of ``make bench``'s three) the
    starts after those of the rows before it on that emulator (``target.bench_after``)."""
    first, total = (target.bench_after + (run % BENCH_RUNS) * target.jobs,
                    target.bench_after + BENCH_RUNS * target.jobs) if target.burst else (0, target.jobs)
    drawn = bench_draws(target.spec, total, seed)[first:first + target.jobs]
    offsets = start_offsets(target.jobs, target.spread)
    arrival = sorted(range(target.jobs), key=offsets.__getitem__)  # the order the bench's starts arrive in
    durations = [0.0] * target.jobs
    for rank, i in enumerate(arrival):
        durations[i] = drawn[rank]
    return durations, offsets


def store(target: Target, run: int, seed: int, bench_sample: int | None = None) -> DurationModel:
    """The store run ``run`` starts from: empty, or 40 earlier generations — the bench's own (the
    same 40 in every run of ``make bench``, whatever its ``--seed``) when replaying its sample, and
    a fresh 40 per run on fresh draws, since which 40 a store holds moves the learned plan as much
    as which 30 a burst holds does."""
    if target.store != "warm":
        return DurationModel()
    duration = Duration.parse(target.spec)
    return warmed(duration, None if bench_sample is not None else random.Random(f"store/{seed}/{run}"))


def simulate(target: Target, runs: int, seed: int, bench_sample: int | None = None,
             policy: dict[str, Any] | None = None) -> dict[str, list[Sample]]:
    """``runs`` runs of the target's scenario on one virtual loop: per poller, each run's sample.
    Fresh draws: each run its own generations and, from a warm store, its own store (:func:`store`).
    ``policy``: settings for our policy other than its defaults (``AdaptivePolicy``'s fields). From
    an empty store our policy also runs with a model told the truth once one generation finished.

    ``bench_sample`` (the bench's ``--seed``): every run replays the bench's own generations
    (:func:`bench_generations`; a burst row's three in turn, as ``make bench`` runs them) instead
    of fresh draws, with read round trips stepped from 1 to 8 ms over the runs: the few milliseconds
    by which, on the bench, each read lands differently from one run to the next."""
    duration = Duration.parse(target.spec)
    rng = random.Random(seed)
    random.seed(seed)  # the policies' cold phases
    phases = random.Random(f"told later/{seed}")  # its own, so the other rows draw what they always drew
    settings = policy or {}
    out: dict[str, list[Sample]] = {}
    with virtual_time() as loop:
        for run in range(runs):
            model = store(target, run, seed, bench_sample)
            pollers: dict[str, Callable[[], PollPolicy]] = {
                "adaptive": lambda model=model: AdaptivePolicy(model, "1:1", MODEL_URI, **settings),  # type: ignore[misc]
                "adaptive, told the distribution": lambda: AdaptivePolicy(fixed=truth(duration), **settings),
            }
            if target.store == "empty":
                told_later = ToldOnceOneFinished(truth(duration))
                pollers["adaptive, told once one finished"] = lambda told=told_later: (  # type: ignore[misc]
                    AdaptivePolicy(told, "1:1", MODEL_URI, **{"cold_phase": phases.random(), **settings}))
            pollers["fixed 1 s"] = lambda: FixedPolicy(1.0)
            pollers["fixed 1 s, another phase"] = lambda: Phased(rng.random())
            durations = [duration.sample(rng) for _ in range(target.jobs)]
            offsets = [rng.uniform(0, target.spread) for _ in range(target.jobs)]
            read_rtt = READ_RTT
            if bench_sample is not None:
                durations, offsets = bench_generations(target, run, bench_sample)
                read_rtt = 0.001 + 0.007 * run / max(1, runs - 1)
            seen = loop.run_until_complete(scenario(durations, offsets, pollers, prefix=f"run{run}/",
                                                    read_rtt=read_rtt))
            for name, sample in seen.items():
                out.setdefault(name, []).append(sample)
    return out


def _pooled(runs: list[Sample], first: int) -> Sample:
    """Three runs from ``first`` as one: their generations together."""
    return {op: seen for sample in runs[first:first + 3] for op, seen in sample.items()}


def report(table: Table, target: Target, results: dict[str, list[Sample]], by_bench_run: bool = False) -> None:
    """Per poller: how many single runs meet the target (and the reads target), three in a row, three pooled;
    replaying the bench's bursts, also how many of each of its three runs do."""
    baseline = results["fixed 1 s"]

    def met(ours: Sample, base: Sample) -> tuple[bool, bool]:
        return target.judge(ours, base), not target.reads or _reads(ours) <= _reads(base)

    for name, runs in results.items():
        if name == "fixed 1 s":  # the yardstick: its median, to read the others' against
            p50s = [_lags(sample, 0.5) for sample in runs]
            table.add(target.scenario, name, "the yardstick",
                      **{"p50 of a run (mean ± sd)": f"{statistics.fmean(p50s):.3f} ± {statistics.pstdev(p50s):.3f} s",
                         "reads": "×1.00"})
            continue
        each = [met(sample, baseline[i]) for i, sample in enumerate(runs)]
        both = [a and b for a, b in each]
        triples = range(0, len(runs) - 2, 3)
        in_a_row = [all(both[i:i + 3]) for i in triples]
        pooled = [all(met(_pooled(runs, i), _pooled(baseline, i))) for i in triples]
        p50s = [_lags(sample, 0.5) for sample in runs]
        ratio = [_reads(sample) / _reads(baseline[i]) for i, sample in enumerate(runs)]
        reads = "; reads ≤ the 1 s poller's" if target.reads else ""
        by_run: dict[str, str] = {}
        if by_bench_run and target.burst:  # the bench's run k always sees sample k
            by_run["both, in the bench's run 1 / 2 / 3"] = " / ".join(
                f"{sum(both[k::BENCH_RUNS]) / len(both[k::BENCH_RUNS]):.0%}" for k in range(BENCH_RUNS))
        table.add(target.scenario, name, target.label + reads,
                  **{"p50 of a run (mean ± sd)": f"{statistics.fmean(p50s):.3f} ± {statistics.pstdev(p50s):.3f} s",
                     "reads": f"×{statistics.fmean(ratio):.2f}",
                     "runs meeting latency": f"{sum(a for a, _ in each) / len(each):.0%}",
                     "runs meeting reads": f"{sum(b for _, b in each) / len(each):.0%}" if target.reads else "",
                     "runs meeting both": f"{sum(both) / len(both):.0%}",
                     "3 runs of 3": f"{sum(in_a_row) / max(1, len(in_a_row)):.0%}",
                     "3 runs pooled": f"{sum(pooled) / max(1, len(pooled)):.0%}", **by_run})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=150, help="runs of each burst target (a multiple of 3)")
    parser.add_argument("--spread-runs", type=int, default=9, help="runs of each target spread over time")
    parser.add_argument("--only", help="targets whose name contains this (e.g. 'burst', 'minute', 'cold')")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bench-sample", type=int, nargs="?", const=SAMPLE_SEED, metavar="SEED",
                        help="every row on the bench's own generations (those make bench's rows see, or bench/run.py "
                             "--seed SEED's; read round trips of 1-8 ms) instead of fresh draws")
    parser.add_argument("--policy", type=json.loads, default={}, metavar="JSON",
                        help="our policy's settings other than the defaults, e.g. '{\"cold_max\": 2.5}'")
    parser.add_argument("--spec", help="draw the chosen rows' generations from this distribution instead "
                                       "(the emulator's --duration syntax, e.g. lognormal:30:0.3:1:300)")
    parser.add_argument("--out", help="also write the table here (Markdown)")
    args = parser.parse_args()
    if args.spec and args.bench_sample is not None:
        parser.error("--spec draws fresh generations; the bench's sample is the bench's distribution")
    if not isinstance(args.policy, dict):
        parser.error("--policy takes a JSON object of AdaptivePolicy's fields")
    unknown = set(args.policy) - {f.name for f in fields(AdaptivePolicy)}
    if unknown:
        parser.error(f"--policy: not a field of AdaptivePolicy: {', '.join(sorted(unknown))}")
    if args.spec:
        try:
            Duration.parse(args.spec)
        except ValueError as exc:
            parser.error(f"--spec: {exc}")
    table = Table()
    began = time.perf_counter()
    for index, target in enumerate(TARGETS):
        if args.only is None or args.only in target.scenario:
            if args.spec:
                target = replace(target, scenario=f"{target.scenario}, {args.spec}", spec=args.spec)
            report(table, target, simulate(target, args.runs if target.burst else args.spread_runs, args.seed + index,
                                           bench_sample=args.bench_sample, policy=args.policy),
                   by_bench_run=args.bench_sample is not None)
    text = table.render()
    print(text)
    print(f"\n{args.runs} runs of each burst, {args.spread_runs} of the others, in {time.perf_counter() - began:.0f} s",
          file=sys.stderr)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
