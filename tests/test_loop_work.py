"""Work kept off the kernel's loop or spread over its turns: store writes, previews in the helper
process, stepped work taking turns, requests paced, grids drawn light while they fill in, a form's
static copy built a figure per turn."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from yart_jupyter.core.steps import off_thread, one_per_turn, steps_now, steps_on_loop
from yart_jupyter.media.image import GeneratedImage
from yart_jupyter.media.pixels import preview
from yart_jupyter.media.worker import PictureWorker
from yart_jupyter.notebook.widget import YandexArtForm

from .helpers import click_and_wait
from .shared_data import PHOTO


async def test_a_cancelled_caller_still_waits_for_its_store_write() -> None:
    """Cancelling the task that writes does not leave the write half-way from its point of view:
    the cancellation arrives once the write has landed, so what the caller does next comes after."""
    landed: list[str] = []

    def write() -> None:
        time.sleep(0.2)
        landed.append("written")

    task = asyncio.ensure_future(off_thread(write))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert landed == ["written"]


class Turns:
    """Counts the turns of the running loop (a callback that schedules itself again) until stopped."""

    def __init__(self) -> None:
        self.count = 0
        self.running = True
        asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.count += 1
        if self.running:
            asyncio.get_running_loop().call_soon(self._tick)


async def test_stepped_work_takes_turns_and_the_loop_runs_between_steps() -> None:
    turns = Turns()
    order: list[str] = []

    def work(name: str) -> Iterator[None]:
        for step in range(3):
            order.append(f"{name}{step}")
            yield
        return name

    results = await asyncio.gather(steps_on_loop(work("a")), steps_on_loop(work("b")))  # type: ignore[arg-type]
    turns.running = False
    assert results == ["a", "b"]
    assert order == ["a0", "a1", "a2", "b0", "b1", "b2"]  # one piece of work at a time, first come first
    assert turns.count >= 5  # the loop ran between the steps
    assert steps_now(work("c")) == "c"  # type: ignore[arg-type]


async def test_requests_due_together_go_out_one_per_turn() -> None:
    turns = Turns()
    seen: list[int] = []

    async def send() -> None:
        await one_per_turn()
        seen.append(turns.count)

    await asyncio.gather(*(send() for _ in range(5)))
    turns.running = False
    assert len(set(seen)) == 5  # no two in the same turn


async def test_a_forms_static_copy_is_built_a_figure_per_turn(form: YandexArtForm) -> None:
    """A job's end updates the form's copy in the notebook with every picture so far (up to 24):
    the loop runs between its figures, and the copy is sent once, whole."""
    updates: list[dict[str, str]] = []

    class Copy:
        def update(self, bundle: dict[str, str], raw: bool) -> None:
            updates.append(bundle)

    form.prompt.value = "four foxes"
    form.count.value = 4
    cards = await click_and_wait(form)
    form.copy.handle = Copy()
    turns = Turns()
    await form.copy.add([card.image for card in cards])
    turns.running = False
    assert len(updates) == 1 and updates[0]["text/html"].count("<figure") == 8  # the job's four, twice
    assert turns.count >= 8
    building = asyncio.ensure_future(form.copy.add([cards[0].image]))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    building.cancel()  # a job cancelled while its copy is built still leaves its pictures in it
    with pytest.raises(asyncio.CancelledError):
        await building
    assert len(updates) == 2 and updates[1]["text/html"].count("<figure") == 9


def test_the_helper_process_makes_the_same_preview() -> None:
    data = PHOTO.read_bytes()
    worker = PictureWorker()
    try:
        made = worker.preview(data, 340)
        assert made == preview(data, 340)  # byte for byte what the kernel's process would make
        assert worker.preview(b"not a picture", 340) is None  # the error is raised where it is redone ...
        assert worker.preview(data, 200) == preview(data, 200)  # ... and the helper goes on serving
        assert worker._process is not None and worker._process.poll() is None
    finally:
        worker.close()
    assert worker._process is None


def test_a_picture_is_previewed_by_the_helper_off_the_loop_and_kept() -> None:
    data = PHOTO.read_bytes()
    image = GeneratedImage(data, "image/jpeg", 1, None, (), "op1")
    made: list[tuple[bytes, str, tuple[int, int]]] = []
    thread = threading.Thread(target=lambda: made.append(image.preview(340)))
    thread.start()
    thread.join()
    assert made[0] == preview(data, 340) and image.preview(340) is made[0]  # kept: not made twice


def test_a_grid_filling_in_is_lighter_than_the_finished_one() -> None:
    from yart_jupyter.core.request import build_request
    from yart_jupyter.engine import ItemEvent
    from yart_jupyter.experiments.experiment import Experiment, Slot
    from yart_jupyter.experiments.grid import grid_bundle
    from yart_jupyter.experiments.sweep import Axis

    data = PHOTO.read_bytes()
    experiment = Experiment("a fox, {style}", [Axis("style", ("ink",))], [])
    experiment.slots = [Slot(("ink",), build_request("a fox, ink", seed=1, model_uri="art://f/yandex-art/latest"))]
    experiment.update(ItemEvent(0, "done", "op1", image=GeneratedImage(data, "image/jpeg", 1, None, (), "op1")))
    filling, finished = (len(grid_bundle(experiment, scale=s)["text/html"]) for s in (1, 2))
    assert filling < finished / 2
