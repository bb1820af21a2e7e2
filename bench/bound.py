"""``bench/bound.py``: the lowest median detection lag any read schedule can have on the bench's
distributions, spending no more reads than a 1 s poller and keeping its p95 — even one that knows
the distribution exactly. Needs scipy (``pip install scipy``), which the project does not depend on.

A schedule is a read rate r(t) per 0.05 s bin. A generation finishing in a bin read at rate r is
seen a uniform 0..1/r later, so the share of lags under m is sum f(t) * min(1, m * r(t)); the reads
it costs are sum S(t) * r(t) * dt (S the survival). Both are linear in r once r is split at 1/q95
(the part under it counts toward the p95 as well), so for each m a linear program finds the best
schedule, and a bisection the least m whose best share reaches one half. ``--cap`` adds the
per-operation cap (by any time t no more than cap * ceil(t) - 1 reads), ``--gap`` a read at least
every max(GAP, t/4) seconds, 10 s at most, from the 2 % quantile on (the policy's own rules: it
reads first there, and leaves no generation unread).

    python bench/bound.py [--cap 1.25] [--gap 1.9]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import sparse
from scipy.optimize import linprog
from scipy.stats import lognorm

#: The bench's distributions (bench/run.py's DISTRIBUTIONS and the demo's): median, σ, clipped to [low, high].
SHAPES = {"tight": (15.0, 0.3, 1.0, 120.0), "wide": (20.0, 1.0, 2.0, 240.0), "demo": (2.0, 0.3, 0.5, 5.0)}
Q95 = 0.95  # a 1 s poller's p95 lag


def best_share(shape: tuple[float, float, float, float], m: float, cap: float | None, gap: float | None,
               dt: float = 0.05) -> float:
    """The largest share of generations any schedule sees within ``m`` seconds (its reads and p95 as above)."""
    median, sigma, low, high = shape
    dist = lognorm(s=sigma, scale=median)
    t = np.arange(0.0, high, dt)
    before = np.where(t < low, 0.0, dist.cdf(t))  # the clip at ``low``: that mass finishes at ``low``
    after = np.where(t + dt <= low, 0.0, dist.cdf(t + dt))
    after[-1] = 1.0  # and the clip at ``high``
    finish, survive = after - before, 1.0 - (before + after) / 2
    n = len(t)
    zeros = np.zeros(n)
    # variables: the rate up to 1/q95 (u), the rate above it (v), and reads so far (c, under the cap)
    objective = np.concatenate([-m * finish, -m * finish, zeros])
    upper = np.vstack([np.concatenate([survive * dt, survive * dt, zeros]),
                       np.concatenate([-Q95 * finish, zeros, zeros])])
    limits = [float(np.sum(survive * dt)), -0.95]
    ceiling = cap * np.ceil(t + dt) - 1.0 if cap is not None else np.full(n, np.inf)
    step = -dt * sparse.identity(n)
    running = sparse.identity(n) - sparse.eye(n, k=-1)  # c[i] - c[i-1] = reads in bin i
    equal = sparse.hstack([step, step, running])
    # with ``gap``, from the 2 % quantile on (where the policy reads first) no read is further than
    # max(gap, a quarter of the time waited) from the next, nor than 10 s: no generation is left unread
    floor = 1 / np.minimum(10.0, np.maximum(gap, t / 4)) if gap is not None else zeros
    floor = np.where(t >= max(low, float(dist.ppf(0.02))), np.minimum(floor, 1 / Q95), 0.0)
    bounds = ([(f, 1 / Q95) for f in floor] + [(0.0, max(0.0, 1 / m - 1 / Q95))] * n
              + [(0.0, c) for c in ceiling])
    result = linprog(objective, A_ub=upper, b_ub=limits, A_eq=equal, b_eq=zeros, bounds=bounds, method="highs")
    return float(-result.fun) if result.success else 0.0


def least_median(shape: tuple[float, float, float, float], cap: float | None, gap: float | None) -> float:
    """Bisect for the least m at which the best schedule sees half the generations within m."""
    low, high = 0.01, 1.0
    for _ in range(20):
        middle = (low + high) / 2
        low, high = (low, middle) if best_share(shape, middle, cap, gap) >= 0.5 else (middle, high)
    return high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap", type=float, help="keep each generation within this many times a 1 s poller's reads")
    parser.add_argument("--gap", type=float, help="read every generation at least every max(GAP, t/4) s, 10 s at most")
    args = parser.parse_args()
    print("| distribution | least possible p50 | the 1 s poller's |\n|---|---|---|")
    for name, shape in SHAPES.items():
        print(f"| {name} | {least_median(shape, args.cap, args.gap):.3f} s | 0.5 s |")


if __name__ == "__main__":
    main()
