"""An Images API request that went out is not dropped when its run is cancelled.

The Images API bills a request when it arrives and keeps nothing to collect: a run interrupted while
its request is out (the Python API cancelled, a cell interrupted, a job cancelled, ``yart`` stopped
with Ctrl-C) still receives the answer and keeps the picture in the store. A request still waiting
for its turn is not sent. The emulator's counters show what was paid for.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import yart_jupyter
from yart_jupyter.clients.images_api import images_id
from yart_jupyter.core import errors, settings
from yart_jupyter.core.models import LIVING_MODEL as ALICE
from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.engine.arrivals import ARRIVALS
from yart_jupyter.store import Store, get_store

from .conftest import FOLDER, Ran
from .helpers import interruptible, run_cell


async def until(predicate: Callable[[], bool], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
async def api(python_api: Emulator) -> AsyncIterator[Emulator]:
    """The Python API on the emulator, whose Images API answers take long enough to cancel meanwhile."""
    python_api.config.images_duration = Duration("fixed", 0.4)
    yield python_api
    assert await ARRIVALS.wait_all(10) == []  # nothing left arriving


async def test_a_request_out_when_cancelled_is_received_and_kept(api: Emulator, isolated_store: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    task = asyncio.ensure_future(yart_jupyter.generate("a heron at dusk", model=ALICE))
    await until(lambda: api.stats.images_in_flight == 1)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.4  # the caller is not held until the answer comes
    [arrival] = ARRIVALS.arriving()
    assert arrival.picture_id in caplog.text and "still coming" in caplog.text  # the warning names it
    image = await yart_jupyter.resume(arrival.picture_id)  # waits for it: then it is the store's
    assert image.image_bytes and image.operation_id == arrival.picture_id
    [record] = Store(isolated_store).history(None)
    assert record.status == "done" and record.operation_id == arrival.picture_id
    assert api.stats.images_generated == 1 and ARRIVALS.arriving() == []


async def test_a_request_waiting_for_its_turn_is_not_sent(api: Emulator, isolated_store: Path) -> None:
    settings.configure(base_url=api.url, folder_id=FOLDER, generations_per_minute=1)
    try:
        first = asyncio.ensure_future(yart_jupyter.generate("the first heron", model=ALICE))
        await until(lambda: api.stats.images_in_flight == 1)
        second = asyncio.ensure_future(yart_jupyter.generate("the second heron", model=ALICE))
        await asyncio.sleep(0.1)  # it waits for the quota's next slot
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        assert [a.picture_id for a in ARRIVALS.arriving()] == []  # nothing of it went out: nothing to receive
        await first
    finally:
        settings.configure(generations_per_minute=None)
    records = {r.prompt: r for r in Store(isolated_store).history(None)}
    assert records["the first heron"].status == "done"
    assert records["the second heron"].status == "cancelled"
    assert api.stats.images_generated == 1


async def test_an_answer_that_fails_after_the_cancel_is_recorded(api: Emulator, isolated_store: Path) -> None:
    api.inject("drop_after", "images")  # the connection drops once the request went out: the answer is lost
    task = asyncio.ensure_future(yart_jupyter.generate("a heron in fog", model=ALICE))
    await until(lambda: api.stats.images_in_flight == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [arrival] = ARRIVALS.arriving()
    with pytest.raises(errors.AnswerLostError):
        await ARRIVALS.wait_for(arrival.picture_id)
    [record] = Store(isolated_store).history(None)
    assert record.answer_lost  # said by pending, and sent again only with --resend-lost


def test_an_interrupted_cell_keeps_its_picture(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    thread_emulator.config.images_duration = Duration("fixed", 0.8)
    source = f"""
import asyncio
from yart_jupyter.notebook import magics
_task = asyncio.ensure_future(magics.run_cell("--model {ALICE}", "a slow heron"))
while not _emulator_stats().images_in_flight:  # its request is out
    await asyncio.sleep(0.01)
_task.cancel()
try:
    await _task
except Exception as exc:
    _err = exc
"""
    shell.user_ns["_emulator_stats"] = lambda: thread_emulator.stats
    result, _ = run_cell(shell, source)
    assert result.success, result.error_in_exec
    error = shell.user_ns["_err"]
    assert isinstance(error, errors.GenerationInterrupted)
    [record] = get_store().history(None)
    picture = images_id(record.idempotency_key or "")
    assert picture in str(error) and "still coming" in str(error) and f"%yandexart resume {picture}" in str(error)
    assert "running the cell again collects them too" in str(error)
    _, plan = run_cell(shell, f"%%yandexart --model {ALICE} --dry-run\na slow heron")
    assert "1 on its way already" in plan.outputs[0].data["text/plain"]  # the run would take it: no quota
    assert "it takes no quota" in plan.outputs[0].data["text/plain"]
    pending, said = run_cell(shell, "%yandexart resume --all --resend-lost")  # not sent again meanwhile
    assert pending.success and thread_emulator.stats.images_generated == 1
    assert "1 generation still on its way in this kernel arrives on its own" in said.outputs[0].data["text/plain"]
    resumed, _ = run_cell(shell, f"%yandexart resume {picture}")
    assert resumed.success, resumed.error_in_exec
    assert shell.user_ns["_"].operation_id == picture
    assert [r.status for r in get_store().history(None)] == ["done"]
    assert thread_emulator.stats.images_generated == 1


def test_a_cancelled_job_says_its_picture_still_comes(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    thread_emulator.config.images_duration = Duration("fixed", 0.8)
    started, _ = run_cell(shell, f"%%yandexart --background --model {ALICE}\na heron in the reeds")
    assert started.success, started.error_in_exec
    shell.user_ns["_emulator_stats"] = lambda: thread_emulator.stats
    out, _ = run_cell(shell, "import asyncio\nwhile not _emulator_stats().images_in_flight:\n"
                             "    await asyncio.sleep(0.01)")
    assert out.success, out.error_in_exec  # its request is out
    _, said = run_cell(shell, "%yandexart cancel all")
    text = " ".join(output.data["text/plain"] for output in said.outputs)
    [record] = get_store().history(None)
    assert f"{images_id(record.idempotency_key or '')} (Images API, already paid for) still comes" in text
    waited, _ = run_cell(shell, "from yart_jupyter.engine.arrivals import ARRIVALS\nawait ARRIVALS.wait_all(10)")
    assert waited.success and waited.result == []
    assert [r.status for r in get_store().history(None)] == ["done"]
    assert thread_emulator.stats.images_generated == 1


@pytest.mark.timeout(120)
def test_yart_stopped_with_ctrl_c_keeps_the_picture_paid_for(cli_env: dict[str, str], tmp_path: Path,
                                                             thread_emulator: Emulator) -> None:
    thread_emulator.config.images_duration = Duration("fixed", 1.5)
    command = [sys.executable, "-m", "yart_jupyter.cli", "generate", "a heron on one leg", "--model", ALICE]
    running = interruptible(command, cli_env, tmp_path)
    deadline = time.monotonic() + 60
    while not thread_emulator.stats.images_in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    running.send_signal(signal.SIGINT)
    printed, err = running.communicate(timeout=60)
    assert running.returncode == 130, err
    assert "waiting for the Images API picture already paid for, to keep it" in err and "kept in the store: img-" in err
    [record] = Store(Path(cli_env["YANDEXART_HOME"])).history(None)
    assert record.status == "done" and record.image_path is not None and record.image_path.exists()
    saved = tmp_path / f"yandexart-{record.operation_id}.jpg"  # saved as asked, as if not interrupted
    assert saved.stat().st_size > 0 and printed.startswith(saved.name)
    assert thread_emulator.stats.images_generated == 1


async def test_asking_again_takes_the_picture_a_cancelled_run_paid_for(api: Emulator, isolated_store: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    task = asyncio.gather(*(yart_jupyter.generate("a heron at dawn", model=ALICE) for _ in range(2)))
    await until(lambda: api.stats.images_in_flight == 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    arriving = {a.picture_id for a in ARRIVALS.arriving()}
    again = await asyncio.gather(*(yart_jupyter.generate("a heron at dawn", model=ALICE) for _ in range(2)))
    assert {image.operation_id for image in again} == arriving and len(arriving) == 2
    assert api.stats.images_generated == 2  # nothing paid twice
    assert "this picture was paid for by a run that was interrupted or gave up waiting" in caplog.text
    third = await yart_jupyter.generate("a heron at dawn", model=ALICE)  # taken once: a new sample now
    assert third.operation_id not in arriving and api.stats.images_generated == 3
    records = Store(isolated_store).history(None)
    assert sorted(r.status for r in records) == ["done"] * 3  # the re-run's own intents left nothing behind
    other = asyncio.ensure_future(yart_jupyter.generate("a heron at noon", model=ALICE))
    await until(lambda: api.stats.images_in_flight == 1)
    other.cancel()
    with pytest.raises(asyncio.CancelledError):
        await other
    fresh = await yart_jupyter.generate("a heron at noon", model=ALICE, cache=False)  # --no-cache: sent anew
    assert api.stats.images_generated == 5 and fresh.operation_id not in arriving


async def test_an_interrupted_batch_writes_the_rows_whose_pictures_came(api: Emulator, tmp_path: Path) -> None:
    from yart_jupyter import batch

    rows = [{"subject": s} for s in ("a fox", "an owl")]
    job = asyncio.ensure_future(batch(rows, prompt="{subject}", model=ALICE, out="set/{n}.jpg"))
    await until(lambda: api.stats.images_in_flight == 2)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert await ARRIVALS.wait_all(10) == []
    assert sorted(p.name for p in (tmp_path / "set").iterdir()) == ["1.jpg", "2.jpg", "metadata.jsonl"]
    again = await batch(rows, prompt="{subject}", model=ALICE, out="set/{n}.jpg")
    assert [r.status for r in again.rows] == ["earlier"] * 2
    assert api.stats.images_generated == 2


def test_a_picture_another_process_is_receiving_is_said_to_be(cli: Callable[..., Ran], isolated_store: Path) -> None:
    from yart_jupyter.core.settings import current

    store = get_store()
    key = "0123abcd-4567-89ef-0123-456789abcdef"
    store.record_queued(current().request("a heron", model_uri=ALICE), key)
    store.mark_submitting(key)  # another kernel's request is out: its answer not recorded yet
    said = cli("resume", images_id(key))
    assert said.returncode == 1 and f"{images_id(key)} went out at" in said.stdout
    assert "may still be receiving it" in said.stdout and "--resend-lost" in said.stdout
    pending = cli("pending")  # not "answer lost": it is young, and no loss was said
    assert "no answer recorded: the kernel or command that sent it may still be receiving it" in pending.stdout
    unknown = cli("resume", "img-ffffffffffffffff")
    assert "is a picture of the Images API, which keeps nothing to collect" in unknown.stdout


async def test_an_operation_left_running_is_collected_by_the_next_ask_without_a_seed(api: Emulator) -> None:
    api.config.duration = Duration("fixed", 0.3)
    first = asyncio.ensure_future(yart_jupyter.generate("a crane in the rain"))  # no seed: a random one
    await until(lambda: api.stats.operations_created == 1)
    await asyncio.sleep(0.05)  # its operation id is in
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    [left] = list(api.operations)
    again = await yart_jupyter.generate("a crane in the rain")  # the cell run again after the interrupt
    assert again.operation_id == left and api.stats.operations_created == 1
    with pytest.raises(errors.GenerationTimeoutError) as timed_out:  # --timeout: the operation goes on
        await yart_jupyter.generate("a crane in the rain", timeout=0.1)
    taken = asyncio.ensure_future(yart_jupyter.generate("a crane in the rain"))
    await asyncio.sleep(0.05)
    taken.cancel()  # cancelled while collecting it: it is left for the next ask again
    with pytest.raises(asyncio.CancelledError):
        await taken
    third = await yart_jupyter.generate("a crane in the rain")
    assert third.operation_id == timed_out.value.operation_id and api.stats.operations_created == 2
    fresh = await yart_jupyter.generate("a crane in the rain")  # each taken once: a new picture now
    assert api.stats.operations_created == 3 and fresh.operation_id not in (left, third.operation_id)
    with pytest.raises(errors.GenerationTimeoutError) as resumed:
        await yart_jupyter.generate("a crane in the rain", timeout=0.1)
    await yart_jupyter.resume(resumed.value.operation_id or "")  # collected by its id: seen now
    assert (await yart_jupyter.generate("a crane in the rain")).operation_id != resumed.value.operation_id
    seeded = await yart_jupyter.generate("a crane in the rain", seed=third.seed)  # a seed chosen: the store's
    assert seeded.operation_id == third.operation_id


async def test_an_operation_left_running_that_fails_is_not_the_next_asks_failure(api: Emulator,
                                                                                  isolated_store: Path) -> None:
    api.config.duration = Duration("fixed", 0.4)
    api.inject("fail", "start", message="an internal failure")
    with pytest.raises(errors.GenerationTimeoutError) as timed_out:
        await yart_jupyter.generate("a crane at night", timeout=0.1)
    image = await yart_jupyter.generate("a crane at night")  # it collects the failure, then makes its own
    assert image.image_bytes and api.stats.operations_created == 2
    records = {r.operation_id: r.status for r in Store(isolated_store).history(None)}
    assert records == {timed_out.value.operation_id: "failed", image.operation_id: "done"}


def test_an_operation_cancelled_on_the_server_is_not_for_the_next_ask(shell: InteractiveShell,
                                                                     thread_emulator: Emulator) -> None:
    thread_emulator.config.duration = Duration("fixed", 5)
    started, _ = run_cell(shell, "%%yandexart --background\na crane in the snow")  # no seed: a random one
    assert started.success, started.error_in_exec
    _, said = run_cell(shell, "%yandexart cancel all")
    [operation] = list(thread_emulator.operations)[-1:]
    assert f"server-side cancel confirmed for {operation}" in " ".join(o.data["text/plain"] for o in said.outputs)
    counted, _ = run_cell(shell, "from yart_jupyter.core.settings import current\n"
                                 "from yart_jupyter.engine.arrivals import ARRIVALS, place\n"
                                 "s = current()\n"
                                 "ARRIVALS.claimable(s.request('a crane in the snow'), place(s.base_url, s.folder_id))")
    assert counted.result == 0  # no picture for the cell run again to take (it would poll a cancelled one)


def test_a_picture_nobody_has_seen_is_taken_at_its_own_endpoint_and_folder_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from yart_jupyter.core.settings import current
    from yart_jupyter.engine.arrivals import place

    monkeypatch.setenv("YC_FOLDER_ID", "folder-a")
    request = current().request("a crane at the shore")  # no seed chosen: a random one is drawn
    ARRIVALS.abandon(request, "op-left", place("http://127.0.0.1:1", "folder-a"))
    assert ARRIVALS.claimable(request, place("http://127.0.0.1:1", "folder-b")) == 0
    assert ARRIVALS.claimable(request, place("http://127.0.0.1:2", "folder-a")) == 0
    again = current().request("a crane at the shore")  # another random seed, the same ask
    assert again.seed != request.seed or again.seed is None
    assert ARRIVALS.claimable(again, place("http://127.0.0.1:1", "folder-a")) == 1
    seeded = current().request("a crane at the shore", seed=7)  # a chosen seed: never one of these
    assert ARRIVALS.claimable(seeded, place("http://127.0.0.1:1", "folder-a")) == 0
