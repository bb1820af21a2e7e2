"""Cancellation passes through (wait_for, timeouts, task groups), and finished jobs free their images."""


import asyncio
import gc
import sys
import weakref
from pathlib import Path
from typing import Any

import pytest

import yart_jupyter
from yart_jupyter.clients.shared import close_shared_clients
from yart_jupyter.core import settings
from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.engine.jobs import JOBS
from yart_jupyter.store import Store

from .conftest import FOLDER, KEY


@pytest.fixture
def slow_api(python_api: Emulator) -> Emulator:
    python_api.config.duration = Duration("fixed", 30)
    return python_api


async def test_wait_for_raises_timeout_error(slow_api: Emulator, isolated_store: Path) -> None:
    with pytest.raises(asyncio.TimeoutError):  # the builtin TimeoutError from 3.11 on
        await asyncio.wait_for(yart_jupyter.generate("a cat", seed=1), 0.5)
    await asyncio.sleep(0.1)
    pending = Store(isolated_store).pending()  # nothing lost: the operation is recorded as pending
    assert [r.operation_id for r in pending] == list(slow_api.operations)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout and TaskGroup are Python 3.11+")
async def test_timeout_context_and_task_group(slow_api: Emulator) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):  # type: ignore[attr-defined,unused-ignore]
            await yart_jupyter.generate("a cat", seed=2)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):  # type: ignore[attr-defined,unused-ignore]
            async with asyncio.TaskGroup() as group:  # type: ignore[attr-defined,unused-ignore]
                group.create_task(yart_jupyter.generate("a cat", seed=3))
                group.create_task(yart_jupyter.generate("a cat", seed=4))


async def test_plain_cancel_is_cancelled_error(slow_api: Emulator) -> None:
    task = asyncio.ensure_future(yart_jupyter.generate("a cat", seed=5))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_while_the_quota_holds_starts_back(emulator: Emulator, tmp_path: Path,
                                                            make_client: Any) -> None:
    """A batch cancelled while some starts wait for a slot of the per-minute quota: those were never
    sent (recorded cancelled, nothing to collect, and the cancel does not wait on them), the ones
    that went out stay pending with their ids."""
    from yart_jupyter.engine import run_batch
    from yart_jupyter.engine.outcomes import INTERRUPTED_UNSENT

    emulator.config.duration = Duration("fixed", 30)
    store = Store(tmp_path / "store")
    async with make_client(generations_per_minute=2) as client:
        requests = [client.build_request(f"a cat {n}", seed=n) for n in range(4)]
        task = asyncio.ensure_future(run_batch(client, requests, store=store))
        for _ in range(200):  # the two the quota lets out have started
            await asyncio.sleep(0.02)
            if len(store.pending()) == 2:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(r.operation_id for r in store.pending()) == sorted(emulator.operations)
    assert len(emulator.operations) == 2 and emulator.stats.by_phase["start"] == 2
    unsent = [r for r in store.history(None) if r.status == "cancelled"]
    assert len(unsent) == 2 and all(r.error == INTERRUPTED_UNSENT for r in unsent)


async def test_finished_background_job_frees_its_images(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from yart_jupyter.core.status import BatchStatus

    monkeypatch.setenv("YC_API_KEY", KEY)
    settings.configure(base_url=emulator.url, folder_id=FOLDER)
    try:
        job = JOBS.submit(yart_jupyter.generate("freed later", seed=11), "one image", BatchStatus(1))
        await job
        await asyncio.sleep(0)  # the done callback runs
        job_ref, image_ref = weakref.ref(job), weakref.ref(job.result())
        assert job.id not in JOBS.jobs and JOBS.finished[-1].id == job.id  # a summary line, not the job
        assert JOBS.finished[-1].state == "done"
        del job
        gc.collect()
        assert job_ref() is None and image_ref() is None
    finally:
        settings.configure(base_url=None, folder_id=None)
        await close_shared_clients()


async def test_a_cancel_while_the_run_sets_up_leaves_nothing_queued(slow_api: Emulator, isolated_store: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An intent is recorded before the run starts; a cancel in the run's first await (reading what the
    store's earlier waits saw) settles it, or `resume --all` would have sent it later."""
    import time

    from yart_jupyter.engine import runner

    monkeypatch.setattr(runner, "_learn_once", lambda store: time.sleep(0.3))  # widen that first await
    task = asyncio.ensure_future(yart_jupyter.generate("cancelled early", seed=5))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [record] = Store(isolated_store).history(None)
    assert record.status == "cancelled" and slow_api.stats.operations_created == 0
