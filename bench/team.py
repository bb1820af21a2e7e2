"""The team store's benchmark: 4 processes x 100 generations sharing one folder's quota.

Each process is ``python -m tests.team_worker`` (a team member: its own client, engine and store
connection). The folder's quota is 100 generations per 10 s window (a minute compressed sixfold, as
the throughput row's) and 50 reads a second; generations take 1-3 s. The time runs from the first
start to the last picture in its store. The same 400 run once through one team store on a throwaway
PostgreSQL, once with a local store per process (each plans against the whole quota alone).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from table import Table  # type: ignore[import-not-found]  # bench/ is the script's folder

from yart_jupyter.emulator import Duration, Emulator, EmulatorConfig

ROOT = Path(__file__).resolve().parent.parent
PER, WINDOW, MEMBERS, EACH = 100, 10.0, 4, 100


def _run(store_url: str | None) -> tuple[float, float, float, dict[str, object], list[dict[str, object]]]:
    """The 400 generations, 4 processes at once: (seconds from the first start to the last picture
    collected into its store, quota floor, seconds from the launch to the first start, emulator stats,
    each one's result)."""
    config = EmulatorConfig(duration=Duration("uniform", 1.0, 3.0), generate_per_minute=PER, generate_window=WINDOW,
                            reads_per_second=50, random_seed=5)
    emulator = Emulator(config)
    emulator.start_in_thread()
    try:
        with tempfile.TemporaryDirectory() as home:
            processes = []
            launched = time.time()
            for member in range(MEMBERS):
                env = {k: v for k, v in os.environ.items() if not k.startswith(("YC_", "YANDEXART_"))}
                env["YANDEXART_HOME"] = f"{home}/{member}"
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "tests.team_worker", store_url or "-", f"member{member}", emulator.url,
                     str(1000 * member), str(EACH), str(WINDOW)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True))
            results = [json.loads(p.communicate(timeout=900)[0]) for p in processes]
            ended = max(float(r["collected_at"]) for r in results)
    finally:
        emulator.stop_thread()
    ops = sorted(emulator.operations.values(), key=lambda o: o.created)
    floor = max((i // PER) * WINDOW + (o.ready_at - o.created) for i, o in enumerate(ops))
    return ended - ops[0].created, floor, ops[0].created - launched, emulator.stats.to_json(), results


def team(table: Table) -> None:
    """Rows: time from the first start to the last picture against the quota floor (the processes' own
    start-up, 4 Pythons on 2 cores, is given beside it), 429s and the peak of reads per second, for the
    team store and for local stores."""
    sys.path.insert(0, str(ROOT))
    from tests.postgres import Cluster

    cluster = Cluster()
    try:
        url = cluster.new_database()
        shared = _run(url)
    finally:
        cluster.stop()
    alone = _run(None)
    for name, (total, floor, launch, stats, results) in (("one team store", shared), ("a local store each", alone)):
        done = sum(int(r["done"]) for r in results)  # type: ignore[call-overload]
        failed = sum(len(r["failed"]) for r in results)  # type: ignore[arg-type]
        refused: dict[str, int] = stats["refused"]  # type: ignore[assignment]
        ok = total <= 1.1 * floor and done == MEMBERS * EACH and not refused and int(stats["reads_peak"]) <= 50
        verdict = f"≤ ×1.1 of the floor, no 429, reads ≤ 50/s: {'PASS' if ok else 'FAIL'}" if name == "one team store" \
            else "(the comparison: each process plans alone)"
        table.add(f"team ({MEMBERS} processes × {EACH}, quota {PER} per {WINDOW:g} s)", name, verdict,
                  **{"time / quota floor": f"{total:.1f} s / {floor:.1f} s (×{total / floor:.3f})",
                     "generations": f"{done} done, {failed} failed (+{launch:.1f} s from launch to first start)",
                     "429s": f"{sum(refused.values())} ({', '.join(f'{k} {v}' for k, v in refused.items()) or 'none'})",
                     "peak reads": f"{stats['reads_peak']}/s"})
