"""``bench/simulate.py``: the latency bench's bursts in virtual time, hundreds of them in a minute.

The real waiting path (``wait_for_operation``, the loop's ``PollScheduler``, ``AdaptivePolicy`` and a
``DurationModel``) runs on an event loop whose clock jumps to its next timer instead of sleeping, and
each read answers after a fixed round trip. Bursts of 30 are drawn from the bench's distributions and
judged by the bench's own targets, so this prints how often *one run* of the bench can meet each of
them: with 30 samples a run's median lands well either side of the policy's, and a target set close
to it passes on some runs and fails on others whatever the code (see docs/performance.md).

    .venv/bin/python bench/simulate.py --runs 150 [--out results.md]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import selectors
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

from run import DISTRIBUTIONS  # type: ignore[import-not-found]  # bench/ is the script's folder
from table import Table, pct  # type: ignore[import-not-found]

from yart_jupyter.clients.durations import DurationModel, LogNormal
from yart_jupyter.clients.limits import SlidingWindowLimiter
from yart_jupyter.clients.operation import Operation
from yart_jupyter.clients.polling import FixedPolicy, PollPolicy
from yart_jupyter.clients.read_policy import AdaptivePolicy
from yart_jupyter.clients.waiting import Progress, wait_for_operation
from yart_jupyter.emulator import Duration

MODEL_URI = "art://emulator-folder/yandex-art/latest"
#: What the bench sees on loopback: the start request's answer, and each read's.
START_RTT, READ_RTT = 0.03, 0.004


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


@contextmanager
def virtual_time() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop on a virtual clock, which ``time.monotonic`` (the scheduler's, the duration
    model's and the loop's own clock) reads while the loop runs."""
    clock = _Clock()
    loop = asyncio.SelectorEventLoop(_Selector(clock))
    try:
        with mock.patch("time.monotonic", clock):
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


Seen = dict[str, list[tuple[float, int]]]  # per poller: (detection lag, reads) of each generation
Runs = list[tuple[list[float], list[float]]]  # per run: each generation's lag, and its reads


async def burst(durations: list[float], pollers: dict[str, Callable[[], PollPolicy]]) -> Seen:
    """Start one generation per duration at once and watch each with every poller, as the bench's
    ``scenario`` does; returns each poller's (lag after the generation was ready, reads)."""
    loop = asyncio.get_running_loop()
    limiter = SlidingWindowLimiter(1_000_000, 1.0)
    seen: Seen = {name: [] for name in pollers}

    async def watch(op: str, started: float, ready: float, name: str) -> None:
        reads = 0

        def progress(event: Progress) -> None:
            nonlocal reads
            if event.phase == "done":
                reads = event.polls + 1

        async def read(operation_id: str, retried: Callable[[int, str, float], None]) -> Operation:
            arrives = loop.time() + READ_RTT / 2  # the service answers what it sees on arrival
            await asyncio.sleep(READ_RTT)
            return Operation(operation_id, done=arrives >= ready)

        await wait_for_operation(read, op, policy=pollers[name](), limiter=limiter, limit=1e6, started=started,
                                 on_progress=progress)
        seen[name].append((loop.time() - ready, reads))

    async def job(i: int, duration: float) -> None:
        started = loop.time()
        await asyncio.sleep(START_RTT)  # the start request; the service's clock starts on its arrival
        ready = started + START_RTT / 2 + duration
        await asyncio.gather(*(watch(f"op{i}", started, ready, name) for name in pollers))

    await asyncio.gather(*(job(i, d) for i, d in enumerate(durations)))
    return seen


@dataclass(frozen=True)
class Target:
    """One of the bench's latency targets, as ``bench/run.py``'s ``report`` judges it."""

    scenario: str
    spec: str
    warm: bool
    judge: Callable[[float, float, float, float], bool]  # (p50, p95, 1 s p50, 1 s p95) -> met
    label: str


TARGETS = [
    Target("wide burst (30 at once), empty store", DISTRIBUTIONS["wide"], False,
           lambda p50, p95, b50, b95: p50 <= 1.05 * b50, "p50 ≤ ×1.05 of the 1 s poller's"),
    Target("cold start, 30 at once, empty store", DISTRIBUTIONS["tight"], False,
           lambda p50, p95, b50, b95: p50 <= 0.35 and p95 <= b95, "p50 ≤ 0.35 s, p95 ≤ the 1 s poller's"),
    Target("cold start, 30 at once, warm store", DISTRIBUTIONS["tight"], True,
           lambda p50, p95, b50, b95: p50 <= 0.3, "p50 ≤ 0.3 s"),
]


def warmed(duration: Duration) -> DurationModel:
    """The bench's warm store: 40 earlier generations of the kind."""
    model = DurationModel()
    rng = random.Random(5)
    for _ in range(40):
        model.observe(duration.sample(rng), "1:1", MODEL_URI)
    return model


def truth(duration: Duration) -> LogNormal:
    """The lognormal the bench draws from (its clipping aside)."""
    return LogNormal(math.log(duration.a), duration.b)


def simulate(target: Target, runs: int, seed: int) -> dict[str, Runs]:
    """``runs`` bursts of 30 on one virtual loop: per poller, per run, (lags, reads over the 1 s poller's)."""
    duration = Duration.parse(target.spec)
    rng = random.Random(seed)
    random.seed(seed)  # the policies' cold phases
    out: dict[str, Runs] = {}
    with virtual_time() as loop:
        for _ in range(runs):
            model = warmed(duration) if target.warm else DurationModel()
            pollers: dict[str, Callable[[], PollPolicy]] = {
                "adaptive": lambda model=model: AdaptivePolicy(model, "1:1", MODEL_URI),  # type: ignore[misc]
                "adaptive, told the distribution": lambda: AdaptivePolicy(fixed=truth(duration)),
                "fixed 1 s": lambda: FixedPolicy(1.0),
                "fixed 1 s, another phase": lambda: Phased(rng.random()),
            }
            seen = loop.run_until_complete(burst([duration.sample(rng) for _ in range(30)], pollers))
            for name, rows in seen.items():
                out.setdefault(name, []).append(([lag for lag, _ in rows], [float(n) for _, n in rows]))
    return out


def _pooled(runs: Runs, first: int) -> tuple[list[float], list[float]]:
    """Three runs from ``first`` as one: their generations together."""
    chosen = runs[first:first + 3]
    return [lag for lags, _ in chosen for lag in lags], [n for _, reads in chosen for n in reads]


def report(table: Table, target: Target, results: dict[str, Runs]) -> None:
    """Per poller: how many single runs meet the target (and the reads target), three in a row, three pooled."""
    baseline = results["fixed 1 s"]

    def met(ours: tuple[list[float], list[float]], base: tuple[list[float], list[float]]) -> tuple[bool, bool]:
        (lags, reads), (base_lags, base_reads) = ours, base
        latency = target.judge(pct(lags, 0.5), pct(lags, 0.95), pct(base_lags, 0.5), pct(base_lags, 0.95))
        return latency, statistics.fmean(reads) <= statistics.fmean(base_reads)

    for name, runs in results.items():
        if name == "fixed 1 s":
            continue
        each = [met(run, baseline[i]) for i, run in enumerate(runs)]
        both = [a and b for a, b in each]
        triples = range(0, len(runs) - 2, 3)
        in_a_row = [all(both[i:i + 3]) for i in triples]
        pooled = [all(met(_pooled(runs, i), _pooled(baseline, i))) for i in triples]
        p50s = [pct(lags, 0.5) for lags, _ in runs]
        ratio = [statistics.fmean(r) / statistics.fmean(baseline[i][1]) for i, (_, r) in enumerate(runs)]
        table.add(target.scenario, name, f"{target.label}; reads ≤ the 1 s poller's",
                  **{"p50 of a run (mean ± sd)": f"{statistics.fmean(p50s):.3f} ± {statistics.pstdev(p50s):.3f} s",
                     "reads": f"×{statistics.fmean(ratio):.2f}",
                     "runs meeting latency": f"{sum(a for a, _ in each) / len(each):.0%}",
                     "runs meeting reads": f"{sum(b for _, b in each) / len(each):.0%}",
                     "runs meeting both": f"{sum(both) / len(both):.0%}",
                     "3 runs of 3": f"{sum(in_a_row) / max(1, len(in_a_row)):.0%}",
                     "3 runs pooled": f"{sum(pooled) / max(1, len(pooled)):.0%}"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=150, help="bursts of 30 per target (a multiple of 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="also write the table here (Markdown)")
    args = parser.parse_args()
    table = Table()
    began = time.perf_counter()
    for index, target in enumerate(TARGETS):
        report(table, target, simulate(target, args.runs, args.seed + index))
    text = table.render()
    print(text)
    print(f"\n{args.runs} simulated runs per target in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
