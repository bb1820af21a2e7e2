"""Event-loop stalls with 50 generations in flight: the engine alone, and the full notebook path in a
real kernel (cell views with previews, a 4 × 4 sweep grid filling in, the form's gallery), on both
APIs. A task ticking every 5 ms measures how late the loop runs it. Each row runs in a process of
its own (the engine in a fresh interpreter, the notebook path in a fresh kernel), so what the
bench's other sections left on the heap does not turn into a long garbage collection here.

Imported by ``bench/run.py`` (``--only responsiveness``); talks to an emulator on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from gcpauses import Collector, collected

from yart_jupyter.clients.client import YandexArtClient
from yart_jupyter.clients.limits import Quotas
from yart_jupyter.core.models import lookup
from yart_jupyter.emulator import standalone
from yart_jupyter.engine import run_batch
from yart_jupyter.store import Store

KEY, FOLDER = "emulator-key", "emulator-folder"
UNLIMITED = Quotas(100_000, 100_000)
TICK = 0.005
#: The models of the two APIs: operations (yandex-art/latest) and the Images API (Alice AI ART).
MODELS = {"operations API": "yandex-art/latest", "Images API": "aliceai-image-art-3.0"}
#: The emulator as the service is at its heaviest here: 1-1.6 MB pictures, 2-4 s generations.
EMULATOR = ("--realistic-payloads", "--duration", "uniform:2:4")


def reported(output: str, marker: str) -> dict[str, Any]:
    """What a measuring process (``ENGINE``) or kernel cell (``STALLS``) printed after ``marker``,
    its collector's pauses as (generation, seconds) pairs."""
    found: dict[str, Any] = json.loads(output.split(marker + " ", 1)[1])
    found["gc"] = [(generation, seconds) for generation, seconds in found["gc"]]
    return found


def summary(stalls: list[float]) -> tuple[float, float]:
    """(worst, p99) of the stalls, in milliseconds."""
    ordered = sorted(stalls)
    return ordered[-1] * 1000, ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000


async def engine_alone(model: str, count: int) -> tuple[list[float], float, int, list[tuple[int, float]]]:
    """``count`` generations through the engine (store on, no display): (stalls, mean MB, failures,
    the collector's pauses)."""
    with standalone(*EMULATOR, niced=True) as url, tempfile.TemporaryDirectory() as home:
        store = Store(home)
        async with YandexArtClient(base_url=url, api_key=KEY, folder_id=FOLDER, env={}, quotas=UNLIMITED) as client:
            stalls: list[float] = []
            running = True

            async def tick() -> None:
                last = time.perf_counter()
                while running:
                    await asyncio.sleep(TICK)
                    now = time.perf_counter()
                    stalls.append(now - last - TICK)
                    last = now

            seeded = lookup(model) is None or lookup(model).seeds  # type: ignore[union-attr]
            requests = [client.build_request("responsive", seed=i + 1 if seeded else None, model_uri=model)
                        for i in range(count)]
            with Collector() as collector:
                ticker = asyncio.ensure_future(tick())
                images, failures = await run_batch(client, requests, store=store)
                running = False
                await ticker
    size = statistics.fmean(len(i.image_bytes) for i in images) / 1e6 if images else 0.0
    return stalls, size, len(failures), collector.pauses


def engine_in_own_process(model: str, count: int) -> tuple[list[float], float, int, list[tuple[int, float]]]:
    """:func:`engine_alone` in a fresh interpreter (``python stalls.py engine MODEL COUNT``)."""
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "engine", model, str(count)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"the engine's stall measurement failed: {done.stderr.strip()[-2000:]}")
    found = reported(done.stdout, "ENGINE")
    return found["stalls"], found["size"], found["failed"], found["gc"]


#: Run in the kernel once the 50 are in flight, in one cell with :data:`REPORT` (so no cell starts
#: while it measures: running a cell is the kernel at work, not a stall): a ticking task.
METER = f"""
import asyncio as _a, sys as _s, time as _t
_s.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from gcpauses import Collector as _Collector
_stalls, _meter, _gcp = [], {{"on": True}}, _Collector().start()
async def _tick():
    last = _t.perf_counter()
    while _meter["on"]:
        await _a.sleep({TICK})
        now = _t.perf_counter()
        _stalls.append(now - last - {TICK})
        last = now
_ticker = _a.get_running_loop().create_task(_tick())
"""

#: The last cell: wait until every job is done, stop the meter, print what it saw.
REPORT = """
from yart_jupyter.engine.jobs import JOBS as _J
while _J.running():
    await _a.sleep(0.05)
_meter["on"] = False
await _ticker
_gcp.stop()
import json as _j
print("STALLS " + _j.dumps({"stalls": _stalls, "failed": [j.summary for j in _J.finished if j.state != "done"],
                            "images": len(f.copy.pictures), "gc": _gcp.pauses}))
"""


def notebook_cells(model: str) -> list[str]:
    """What a researcher's notebook does at once: a form's click (16 pictures), two background cells
    (16 and 2), and a 4 x 4 sweep filling in: 50 generations in flight, each face drawing its own."""
    return [
        f"%load_ext yart_jupyter\n%config YandexArt.model_uri = {model!r}\nimport yart_jupyter\n"
        "import yart_jupyter.notebook.widget, yart_jupyter.experiments, yart_jupyter.present.fullsize",
        "f = yart_jupyter.form()\nf.prompt.value = 'a fox in the gallery'\nf.count.value = 16\ndisplay(f)",
        "f.generate_button.click()",
        "%%yandexart --background --count 16\na fox in a cell",
        "%%yandexart --background --count 2\ntwo more foxes",
        "%%yandexart --background --count 4 --vary style=\"ink|oil|chalk|pixel art\"\na fox, {style}",
        METER + REPORT,
    ]


def notebook_path(model: str) -> tuple[list[float], int, list[str], list[tuple[int, float]]]:
    """The cells of :func:`notebook_cells` in a real kernel: (stalls, pictures in the form, failures,
    the collector's pauses)."""
    from jupyter_client.manager import KernelManager

    with standalone(*EMULATOR, niced=True) as url, tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, YANDEXART_BASE_URL=url, YC_API_KEY=KEY, YC_FOLDER_ID=FOLDER, YANDEXART_HOME=home)
        manager = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(home, "kernel"))
        manager.start_kernel(env=env, cwd=home)
        client = manager.client()
        client.start_channels()
        parts: list[str] = []

        def keep(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                parts.append(msg["content"]["text"])

        try:
            client.wait_for_ready(timeout=60)
            for source in notebook_cells(model):
                reply = client.execute_interactive(source, timeout=300, output_hook=keep)
                if reply["content"]["status"] != "ok":
                    raise RuntimeError(f"a bench cell failed: {reply['content'].get('evalue')}")
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    found = reported("".join(parts), "STALLS")
    return found["stalls"], found["images"], found["failed"], found["gc"]


def responsiveness(table: Any, count: int = 50) -> None:
    """The rows: for each API, the engine alone and the notebook path; target worst ≤ 20 ms, p99 ≤ 5 ms."""
    for api, model in MODELS.items():
        stalls, size, failed, pauses = engine_in_own_process(model, count)
        worst, p99 = summary(stalls)
        ok = worst <= 20 and p99 <= 5 and not failed
        section = f"responsiveness ({count} in flight, {size:.1f} MB pictures, {api})"
        table.add(section, "engine alone: event-loop stall",
                  f"worst ≤ 20 ms, p99 ≤ 5 ms: {'PASS' if ok else 'FAIL'}",
                  adaptive=f"worst {worst:.1f} ms, p99 {p99:.1f} ms ({len(stalls)} ticks; GC: {collected(pauses)})")
        stalls, shown, failures, pauses = notebook_path(model)
        worst, p99 = summary(stalls)
        ok = worst <= 20 and p99 <= 5 and not failures
        table.add(section, "notebook path in a kernel (2 cells, 4 × 4 sweep, form): event-loop stall",
                  f"worst ≤ 20 ms, p99 ≤ 5 ms: {'PASS' if ok else 'FAIL'}",
                  adaptive=f"worst {worst:.1f} ms, p99 {p99:.1f} ms ({len(stalls)} ticks; {shown} in the form; "
                           f"GC: {collected(pauses)}" + (f"; failed: {failures}" if failures else "") + ")")


if __name__ == "__main__":
    if sys.argv[1:2] == ["engine"]:  # one row's measurement, for engine_in_own_process
        stalls, size, failed, pauses = asyncio.run(engine_alone(sys.argv[2], int(sys.argv[3])))
        print("ENGINE " + json.dumps({"stalls": stalls, "size": size, "failed": failed, "gc": pauses}))
    else:
        from table import Table  # type: ignore[import-not-found]

        result = Table()
        responsiveness(result, int(sys.argv[1]) if len(sys.argv) > 1 else 50)
        print(result.render())
