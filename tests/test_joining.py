"""The same picture asked for twice while it is on its way is paid for once.

Two asks in one process (gathered ``generate()`` calls, a cell run again while its background run
goes on) share one operation; a pending operation of the same request in the store (another
kernel's, a teammate's) is collected instead of starting another. The emulator's counters show what
was paid for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import yart_jupyter
from yart_jupyter.batches import plan_table
from yart_jupyter.clients.client import YandexArtClient
from yart_jupyter.core import errors
from yart_jupyter.core.config import GENERATE_PATH
from yart_jupyter.core.settings import current
from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.engine.flights import FLIGHTS
from yart_jupyter.experiments.experiment import Experiment
from yart_jupyter.media.image import GeneratedImage
from yart_jupyter.notebook.widget import YandexArtForm
from yart_jupyter.present.records import why
from yart_jupyter.store import Store, get_store
from yart_jupyter.store.records import ExperimentRecord

from .conftest import KEY
from .helpers import run_cell


@pytest.fixture
async def api(python_api: Emulator) -> AsyncIterator[Emulator]:
    """The Python API on the emulator, whose generations take long enough to ask twice meanwhile."""
    python_api.config.duration = Duration("fixed", 0.6)
    yield python_api
    assert len(FLIGHTS) == 0  # every flight landed


async def test_two_asks_at_once_share_one_operation(api: Emulator, isolated_store: Path) -> None:
    first, second = await asyncio.gather(yart_jupyter.generate("twin foxes", seed=9),
                                         yart_jupyter.generate("twin foxes", seed=9))
    assert api.stats.operations_created == 1
    assert first.operation_id == second.operation_id
    assert first.image_bytes == second.image_bytes and first is not second
    store = Store(isolated_store)
    assert store.unsent() == [] and store.pending() == []  # the joiner's intent left nothing to send
    assert [r.operation_id for r in store.history()] == [first.operation_id]


async def test_a_pending_operation_in_the_store_is_collected(api: Emulator, isolated_store: Path,
                                                             make_client: Callable[..., YandexArtClient]) -> None:
    async with make_client() as other:  # another kernel: started it, recorded it, still waiting
        request = other.build_request("a heron at dusk", seed=4)
        operation_id = await other.start(request)
        Store(isolated_store).record_started(operation_id, request)
    updates: list[str] = []
    image = await yart_jupyter.generate("a heron at dusk", seed=4, on_update=lambda s: updates.append(s.text()))
    assert api.stats.operations_created == 1
    assert image.operation_id == operation_id
    assert any(operation_id in text for text in updates)  # the status line names the operation it waits for
    record = Store(isolated_store).get(operation_id)
    assert record is not None and record.status == "done"


async def test_no_cache_pays_again(api: Emulator, make_client: Callable[..., YandexArtClient],
                                   isolated_store: Path) -> None:
    async with make_client() as other:
        request = other.build_request("a heron at dusk", seed=4)
        operation_id = await other.start(request)
        Store(isolated_store).record_started(operation_id, request)
    image = await yart_jupyter.generate("a heron at dusk", seed=4, cache=False)
    assert api.stats.operations_created == 2 and image.operation_id != operation_id


async def test_an_operation_the_service_does_not_have_is_sent_anew(api: Emulator, isolated_store: Path,
                                                                   make_client: Callable[..., YandexArtClient]
                                                                   ) -> None:
    async with make_client() as other:  # an embedded emulator's operation of another process: not this one's
        Store(isolated_store).record_started("d0000000000000000000", other.build_request("a gull", seed=3))
    image = await yart_jupyter.generate("a gull", seed=3)
    assert api.stats.operations_created == 1 and image.operation_id != "d0000000000000000000"
    store = Store(isolated_store)
    record = store.get(image.operation_id)
    assert store.unsent() == [] and record is not None and record.status == "done"


async def test_the_joiner_collects_what_the_first_stopped_waiting_for(api: Emulator, isolated_store: Path) -> None:
    store = Store(isolated_store)
    first = asyncio.ensure_future(yart_jupyter.generate("a lantern", seed=12))
    while not store.pending():  # the first's start answered (and recorded)
        await asyncio.sleep(0.01)
    second = asyncio.ensure_future(yart_jupyter.generate("a lantern", seed=12))
    await asyncio.sleep(0)  # the second records its ask...
    while store.unsent():  # ...and drops it once it has joined the first
        await asyncio.sleep(0.01)
    first.cancel()  # the first cell interrupted: its operation still runs on the server
    with pytest.raises(asyncio.CancelledError):
        await first
    image = await second
    assert api.stats.operations_created == 1
    assert image.operation_id == next(iter(api.operations))


async def test_the_joiner_keeps_to_its_own_timeout(api: Emulator) -> None:
    api.config.duration = Duration("fixed", 1.5)
    first = asyncio.ensure_future(yart_jupyter.generate("a slow tide", seed=8))
    while api.stats.operations_created == 0:
        await asyncio.sleep(0.01)
    with pytest.raises(errors.GenerationTimeoutError) as raised:
        await yart_jupyter.generate("a slow tide", seed=8, timeout=0.3)
    assert raised.value.operation_id == next(iter(api.operations))  # the one to collect, named
    assert "another run of this process is still making the same picture" in str(raised.value)
    assert (await first).operation_id == raised.value.operation_id and api.stats.operations_created == 1


async def test_the_joiner_asks_anew_when_the_first_made_nothing(api: Emulator) -> None:
    api.inject("status", "start", times=1, status=400)  # the first start to go out is refused (not retried)
    outcomes = await asyncio.gather(yart_jupyter.generate("a kite", seed=2), yart_jupyter.generate("a kite", seed=2),
                                    return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, errors.YandexArtError)]
    images = [o for o in outcomes if isinstance(o, GeneratedImage)]
    assert len(refused) == 1 and len(images) == 1, outcomes  # whichever owned it failed; the other sent its own
    assert api.stats.operations_created == 1 and images[0].operation_id in api.operations


async def test_the_forms_generate_pressed_twice_pays_once(form: YandexArtForm, emulator: Emulator) -> None:
    emulator.config.duration = Duration("fixed", 0.5)
    form.prompt.value = "a grey heron in the reeds"
    form.seed.value = "42"
    form.keep_seed.value = True
    form.generate_button.click()
    form.generate_button.click()  # impatient: the first is still on its way
    images = await asyncio.gather(*(job.task for job in form.jobs))
    assert emulator.stats.operations_created == 1
    assert len({image.operation_id for found in images for image in found}) == 1


def text_of(captured: Any) -> str:
    return "".join(o.data.get("text/html", "") + o.data.get("text/plain", "") for o in captured.outputs)


def test_a_cell_run_again_meanwhile_joins_and_says_so(shell: Any, thread_emulator: Emulator) -> None:
    thread_emulator.config.duration = Duration("fixed", 1.0)
    shell.run_cell("%%yandexart --seed 21 22 --background\na crane in fog")
    result, captured = run_cell(shell, "%%yandexart --seed 21 22 23 --var again\na crane in fog")
    assert result.error_in_exec is None, result.error_in_exec
    assert thread_emulator.stats.operations_created == 3  # 21 and 22 once each, 23 new
    assert sorted(image.seed for image in shell.user_ns["again"]) == [21, 22, 23]
    assert ("2 of these pictures were on their way already (asked for by another run, kernel or teammate): "
            "collected from there, not paid for again") in text_of(captured)


def test_the_dry_run_counts_what_is_on_its_way(shell: Any, thread_emulator: Emulator, isolated_store: Path) -> None:
    thread_emulator.config.duration = Duration("fixed", 5.0)
    shell.run_cell("%%yandexart --seed 31 --background\na crane in fog")
    deadline = time.monotonic() + 10
    while not Store(isolated_store).pending():  # its operation id is written by a worker thread
        assert time.monotonic() < deadline, "the background start was never recorded"
        time.sleep(0.02)
    _, captured = run_cell(shell, "%%yandexart --seed 31 32 --dry-run\na crane in fog")
    shown = text_of(captured)
    assert "1 on its way already" in shown and "1 to send" in shown and "on its way" in shown, shown
    assert thread_emulator.stats.operations_created == 1


async def test_a_batch_collects_a_teammates_generation_of_its_row(
        api: Emulator, make_client: Callable[..., YandexArtClient], monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"subject": "a fox"}, {"subject": "an owl"}]
    plan = yart_jupyter.batch(rows, prompt="{subject}", seed=5, out="set/{n}.jpg", dry_run=True)
    assert [r["plan"] for r in plan.records()] == ["start", "start"]
    request = plan_table(rows, current(), prompt="{subject}", seed=5, out="set/{n}.jpg").rows[1].request
    assert request is not None
    async with make_client() as other:  # a teammate started the owl, and is still waiting for it
        operation_id = await other.start(request)
    monkeypatch.setenv("YANDEXART_USER", "alice")
    get_store().record_started(operation_id, request)
    monkeypatch.setenv("YANDEXART_USER", "me")
    plan = yart_jupyter.batch(rows, prompt="{subject}", seed=5, out="set/{n}.jpg", dry_run=True)
    assert [r["plan"] for r in plan.records()] == ["start", "collect"] and plan.to_send == 1
    result = await yart_jupyter.batch(rows, prompt="{subject}", seed=5, out="set/{n}.jpg")
    assert [r.status for r in result.rows] == ["done", "done"] and api.stats.operations_created == 2
    assert result.rows[1].operation_id == operation_id


def test_a_sweep_that_joined_shows_its_pictures_again_from_the_store(shell: Any, thread_emulator: Emulator,
                                                                    isolated_store: Path) -> None:
    thread_emulator.config.duration = Duration("fixed", 1.0)
    cell = '%%yandexart --seed 3 --vary style="ink|oil"{}\na crane in fog, {{style}}'
    shell.run_cell(cell.format(" --background"))
    result, _ = run_cell(shell, cell.format(""))
    assert result.error_in_exec is None and thread_emulator.stats.operations_created == 2
    joined = Experiment.load(Store(isolated_store), shell.user_ns["_"].id)
    assert [slot.state for slot in joined.slots] == ["done", "done"]  # not "missing": its cells name the operations


async def test_a_start_the_store_answered_meanwhile_is_not_sent(api: Emulator, isolated_store: Path) -> None:
    """Recorded before another run made the same picture (a job queued behind quota), a start finds
    the picture in the store when its turn comes: answered from there, nothing sent."""
    from yart_jupyter.clients.shared import shared_client
    from yart_jupyter.core.status import BatchStatus
    from yart_jupyter.engine import Batch, prepare, run_batch

    store = Store(isolated_store)
    request = current().request("an otter", seed=6)
    later = [prepare(store, Batch([request]), BatchStatus(1)) for _ in range(2)]  # asked for twice, not sent yet
    made = await yart_jupyter.generate("an otter", seed=6)
    statuses = [BatchStatus(1), BatchStatus(1)]  # the second joins the first, which finds the picture
    outcomes = await asyncio.gather(*(run_batch(shared_client(current()), batch.items, status=status, store=store)
                                      for batch, status in zip(later, statuses, strict=True)))
    for (images, failures), status in zip(outcomes, statuses, strict=True):
        assert not failures and images[0].cached and images[0].operation_id == made.operation_id
        assert status.cached == 1 and status.running == 0 and status.done == 1
    assert api.stats.operations_created == 1 and store.unsent() == []


async def test_a_start_another_kernel_made_meanwhile_is_collected_instead(
        api: Emulator, isolated_store: Path, make_client: Callable[..., YandexArtClient]) -> None:
    """Recorded before another kernel started the same picture (both waiting for quota), a start finds
    that kernel's operation when its turn comes and collects it; one the service does not have is
    tried once, then the start goes out."""
    from yart_jupyter.clients.shared import shared_client
    from yart_jupyter.core.status import BatchStatus
    from yart_jupyter.engine import Batch, prepare, run_batch

    store = Store(isolated_store)
    request = current().request("a badger", seed=14)
    later = prepare(store, Batch([request]), BatchStatus(1))  # asked for here, its turn not come yet
    async with make_client() as other:  # meanwhile another kernel started it
        operation_id = await other.start(request)
    store.record_started(operation_id, request)
    images, failures = await run_batch(shared_client(current()), later.items, store=store)
    assert not failures and images[0].operation_id == operation_id and api.stats.operations_created == 1
    again = prepare(store, Batch([current().request("a badger", seed=15)]), BatchStatus(1))
    store.record_started("d0000000000000000000", current().request("a badger", seed=15))  # not this service's
    images, failures = await run_batch(shared_client(current()), again.items, store=store)
    assert not failures and api.stats.operations_created == 2 and store.unsent() == []


async def test_a_refused_start_looks_again_before_it_is_sent_again(
        api: Emulator, isolated_store: Path, make_client: Callable[..., YandexArtClient]) -> None:
    """Two kernels' starts at once, one refused by the quota (429): before it is sent again it finds
    the other kernel's operation and collects it."""
    store = Store(isolated_store)
    request = current().request("a marten", seed=16)
    api.inject("status", "start", times=1, status=429, retry_after=2)
    task = asyncio.ensure_future(yart_jupyter.generate("a marten", seed=16))
    while api.stats.by_status.get(429, 0) == 0:  # refused: it waits two seconds to send it again
        await asyncio.sleep(0.01)
    async with aiohttp.ClientSession() as other, other.post(  # the other kernel: its own quota, not paused
            f"{api.url}{GENERATE_PATH}", json=request.to_json(), headers={"Authorization": f"Api-Key {KEY}"}) as answer:
        operation_id = (await answer.json())["id"]
    store.record_started(operation_id, request)
    image = await task
    assert image.operation_id == operation_id and api.stats.operations_created == 1
    assert store.unsent() == []


async def test_what_a_dead_kernel_left_unsent_is_not_paid_again(api: Emulator, store_backend: str) -> None:
    """A kernel died with two starts recorded, one queued and one out with its answer lost; the notebook
    run again made both pictures. ``resume --all`` must not pay for them again (local and team store)."""
    from yart_jupyter.core.status import BatchStatus
    from yart_jupyter.engine import Batch, Intent, prepare, unfinished_items

    store = get_store()
    requests = [current().request("a dead kernel's fox", seed=n) for n in (1, 2)]
    keys = [item.key for item in prepare(store, Batch(requests), BatchStatus(2)).items if isinstance(item, Intent)]
    store.mark_submitting(keys[1])
    store.record_experiment(ExperimentRecord("exp-dead", datetime.now(timezone.utc), "a dead kernel's fox",
                                             (("seed", (1, 2)),), (((1,), keys[0]), ((2,), keys[1])), None))
    again = [await yart_jupyter.generate("a dead kernel's fox", seed=n) for n in (1, 2)]
    assert api.stats.operations_created == 2
    assert unfinished_items(store) == [] and store.unsent() == []
    settled = [r for r in store.history(None, status="cancelled")]
    assert len(settled) == 1 and why(settled[0]) == f"made by a later run ({again[1].operation_id})"
    reloaded = Experiment.load(store, "exp-dead")  # the dead run's sweep names the pictures now
    assert [slot.state for slot in reloaded.slots] == ["done", "done"]


def test_cancelling_one_job_leaves_the_picture_another_joined(shell: Any, thread_emulator: Emulator) -> None:
    thread_emulator.config.duration = Duration("fixed", 1.0)
    shell.run_cell("%%yandexart --seed 41 --background\na lonely pier")
    first = shell.user_ns["_"]
    shell.run_cell("%%yandexart --seed 41 --background --var pier\na lonely pier")
    second = shell.user_ns["_"]
    while not first.status.pending_ids:  # its start answered
        shell.run_cell("import asyncio; await asyncio.sleep(0.02)")
    _, captured = run_cell(shell, f"%yandexart cancel {first.id}")
    operation_id = first.status.pending_ids[0]
    assert f"{operation_id} goes on: {second.id} waits for it too" in text_of(captured)
    result = shell.run_cell("import asyncio\nwhile 'pier' not in globals(): await asyncio.sleep(0.05)")
    assert result.error_in_exec is None
    assert shell.user_ns["pier"].operation_id == operation_id and not thread_emulator.operations[operation_id].cancelled
    assert thread_emulator.stats.operations_created == 1


async def test_an_operation_its_owner_cancelled_is_not_joined(
        api: Emulator, isolated_store: Path, make_client: Callable[..., YandexArtClient]) -> None:
    async with make_client() as other:  # a teammate started it, then cancelled it
        request = other.build_request("a tern", seed=17)
        operation_id = await other.start(request)
        Store(isolated_store).record_started(operation_id, request)
        assert await other.cancel(operation_id)
    image = await yart_jupyter.generate("a tern", seed=17)
    assert image.operation_id != operation_id and api.stats.operations_created == 2
