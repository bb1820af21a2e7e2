"""bench/simulate.py, whose figures the performance page quotes: virtual time is exact, and the real
waiting path runs on it."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sys
from pathlib import Path

import pytest

from yart_jupyter.clients.polling import FixedPolicy
from yart_jupyter.notebook.widget import YandexArtForm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))  # a folder of scripts
import simulate  # type: ignore[import-not-found]

pytestmark = pytest.mark.service_clock  # the bench's read schedule is the service's


def test_virtual_time_reads_a_fixed_poller_exactly_as_the_scheduler_plans() -> None:
    """A 1 s poller on a 2.5 s generation: the wait begins after the start request (30 ms), each read
    takes 4 ms and the next is due a second after the last answer, so the third read (3.038 s) finds
    it done, 3.042 - 2.515 s after it was ready. Real sleeping would take three seconds; a clock that
    did not move would never finish."""
    with simulate.virtual_time() as loop:
        began = loop.time()
        seen = loop.run_until_complete(simulate.scenario([2.5], [0.0], {"fixed": lambda: FixedPolicy(1.0)}))
        elapsed = loop.time() - began
    lag, reads = seen["fixed"]["op0"]
    assert reads == 3
    assert lag == pytest.approx(3.042 - 2.515, abs=1e-3)
    assert elapsed == pytest.approx(3.042, abs=1e-3)


def test_virtual_time_is_the_waiting_paths_clock_and_no_one_elses() -> None:
    import time

    from yart_jupyter.clients import scheduler

    real = time.monotonic()
    with simulate.virtual_time() as loop:
        loop.run_until_complete(asyncio.sleep(3600))
        assert scheduler.time.monotonic() == pytest.approx(1000.0 + 3600, abs=1e-3)
        assert time.monotonic() - real < 60
    assert scheduler.time is time


def test_a_simulated_target_is_judged_run_by_run() -> None:
    """The cold start from an empty store, three runs: every poller saw every generation of each run,
    and the table says how many runs met the target."""
    target = next(t for t in simulate.TARGETS if t.scenario.startswith("cold start") and t.store == "empty")
    results = simulate.simulate(target, runs=3, seed=1)
    pollers = ["adaptive", "adaptive, told the distribution", "adaptive, told once one finished", "fixed 1 s",
               "fixed 1 s, another phase"]
    assert list(results) == pollers
    for samples in results.values():
        assert [len(sample) for sample in samples] == [30, 30, 30]
        assert all(lag >= 0 and reads >= 1 for sample in samples for lag, reads in sample.values())
    table = simulate.Table()
    simulate.report(table, target, results)
    assert [row.metric for row in table.rows] == pollers
    judged = [row for row in table.rows if row.metric != "fixed 1 s"]
    assert all(row.values["3 runs of 3"].endswith("%") for row in judged)


def test_a_what_if_runs_our_policy_with_other_settings_on_other_generations() -> None:
    """``--policy`` and ``--spec``: cold reads held 0.9 s apart all along spend more reads than the
    defaults on the same 15 s generations; drawn from a 30 s distribution, a 1 s poller reads each
    generation about 31 times instead of 16."""
    cold = next(t for t in simulate.TARGETS if t.scenario.startswith("cold start") and t.store == "empty")
    target = dataclasses.replace(cold, jobs=5)  # five of the thirty: the same waits, a sixth of the work
    default = simulate.simulate(target, runs=1, seed=1)
    dense = simulate.simulate(target, runs=1, seed=1, policy={"cold_growth": 0.0, "cold_max": 0.9})
    assert simulate._reads(dense["adaptive"][0]) > simulate._reads(default["adaptive"][0]) + 3
    assert default["fixed 1 s"] == dense["fixed 1 s"]  # the same generations
    slower = simulate.simulate(dataclasses.replace(target, spec="lognormal:30:0.3:1:300"), runs=1, seed=1)
    assert 24 < simulate._reads(slower["fixed 1 s"][0]) < 40
    assert 10 < simulate._reads(default["fixed 1 s"][0]) < 22


def test_the_what_if_flags_reach_the_rows(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["simulate.py", "--spread-runs", "1", "--only", "demo",
                                      "--policy", '{"cold_max": 2.5}', "--spec", "lognormal:1:0.3:0.5:3"])
    simulate.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if "lognormal:1:0.3:0.5:3 |" in line]
    assert len(rows) == 5  # the chosen row's five pollers, on the other distribution
    for bad in (["--policy", "{not json"], ["--policy", '{"cold_maximum": 2.5}'], ["--policy", "[1]"],
                ["--spec", "lognormal:fast"]):
        monkeypatch.setattr(sys, "argv", ["simulate.py", *bad])
        with pytest.raises(SystemExit):  # argparse's one-line error, before any row runs
            simulate.main()
    errors = capsys.readouterr().err
    assert "cold_maximum" in errors and "lognormal:fast" in errors


def test_told_once_one_finished_believes_the_truth_only_after_a_finish() -> None:
    truth = simulate.LogNormal(2.7, 0.3)
    model = simulate.ToldOnceOneFinished(truth)
    assert model.distribution("1:1", "m") == model.prior  # nothing finished: what our model believes
    model.observe(9.0, "1:1", "m")
    assert model.distribution("1:1", "m") == truth


def test_the_bench_sample_is_what_the_benchs_emulator_draws_every_run() -> None:
    """The demo row's 13 generations, started on an emulator run as the bench runs it: the same
    durations from a fresh emulator each time (the bench's seeded one), within the demo's clipping
    (0.5-5 s), at the bench's offsets, and not what fresh draws would give. A burst row sees three
    different samples over make bench's three runs, then the first again; a row spread over time
    the same one every run."""
    import run  # type: ignore[import-not-found]

    from yart_jupyter.emulator import Duration

    demo = next(t for t in simulate.TARGETS if t.scenario.startswith("demo"))
    durations, offsets = simulate.bench_generations(demo)
    simulate.bench_draws.cache_clear()
    assert (durations, offsets) == simulate.bench_generations(demo, run=1)
    assert offsets == run.start_offsets(13, 20.0)
    assert len(durations) == 13 and all(0.5 <= d <= 5.0 for d in durations)
    rng = random.Random(11)  # the emulator's seed, drawn without its other draws (operation ids)
    fresh = [Duration.parse(run.DEMO).sample(rng) for _ in range(13)]
    assert durations != fresh

    # a burst of 5 after 3 other starts (small, as the bench's 30 after 300 would take seconds)
    burst = dataclasses.replace(demo, jobs=5, spread=0.0, burst=True, bench_after=3)
    samples = [simulate.bench_generations(burst, k) for k in range(4)]
    assert all(offsets == [0.0] * 5 for _, offsets in samples)
    assert len({tuple(durations) for durations, _ in samples[:3]}) == 3 and samples[3] == samples[0]
    drawn = simulate.bench_draws(run.DEMO, 3 + 3 * 5)
    assert [list(drawn[3 + 5 * k:8 + 5 * k]) for k in range(3)] == [durations for durations, _ in samples[:3]]


def test_fresh_draws_start_each_run_from_its_own_warm_store() -> None:
    """The bench's warm store is one sample of 40 (the same in every run of make bench); fresh draws
    take another 40 per run, and replaying the bench's sample takes the bench's own."""
    import run  # type: ignore[import-not-found]

    from yart_jupyter.emulator import Duration

    warm = next(t for t in simulate.TARGETS if t.store == "warm")
    bench = run.warmed(Duration.parse(warm.spec)).distribution("1:1", run.MODEL_URI)
    fresh = [simulate.store(warm, k, seed=1).distribution("1:1", run.MODEL_URI) for k in range(3)]
    assert len(set(fresh)) == 3 and bench not in fresh
    assert simulate.store(warm, 0, seed=1).distribution("1:1", run.MODEL_URI) == fresh[0]
    assert simulate.store(warm, 2, seed=1, bench_sample=11).distribution("1:1", run.MODEL_URI) == bench
    empty = next(t for t in simulate.TARGETS if t.store == "empty")
    assert simulate.store(empty, 0, seed=1).count("1:1", run.MODEL_URI) == 0


async def test_the_benchs_notebook_cells_name_what_the_form_has(form: YandexArtForm) -> None:
    """bench/stalls.py drives a form by its members' names in a kernel, where no test sees them: a
    member renamed in the form (``f.results``, gone when the form's copy became StaticCopy) broke the
    bench's notebook row unnoticed. Every ``f.x.y`` its cells use must exist on a real form."""
    import re

    import stalls  # type: ignore[import-not-found]

    paths = set(re.findall(r"\bf((?:\.[A-Za-z_]+)+)", "\n".join(stalls.notebook_cells("model"))))
    assert {".copy.pictures", ".generate_button.click"} <= paths
    for path in paths:
        found: object = form
        for name in path.strip(".").split("."):
            assert hasattr(found, name), f"the bench's cells use f{path}, which the form does not have"
            found = getattr(found, name)
