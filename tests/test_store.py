"""The store: every path records, the cache, history, pending, prune, concurrency, crashes.

The tests that go through the store's interface run twice (``store_backend``): on the local store
(SQLite) and on a team's store (PostgreSQL)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import yart_jupyter
from yart_jupyter import errors
from yart_jupyter.core.request import build_request
from yart_jupyter.emulator import Duration, Emulator, standalone
from yart_jupyter.media.image import GeneratedImage
from yart_jupyter.store import Store, get_store

from .conftest import FOLDER, KEY
from .helpers import execute, picture_data, run_cell, start_kernel

both = pytest.mark.usefixtures("store_backend")


@both
def test_blocking_generation_is_recorded(shell: InteractiveShell, isolated_store: Path, store_backend: str) -> None:
    run_cell(shell, "%%yandexart --seed 5 --aspect 16:9\na kingfisher\n--- 0.5\nblue")
    assert get_store().shared == (store_backend == "team")
    image = shell.user_ns["_"]
    record = get_store().get(image.operation_id)
    assert record is not None and record.status == "done"
    assert record.seed == 5 and record.aspect == "16:9" and record.seed_given
    assert [(m.text, m.weight) for m in record.messages] == [("a kingfisher", 1.0), ("blue", 0.5)]
    assert record.image_path is not None and record.image_path.read_bytes() == image.image_bytes
    assert record.image_path.parent == get_store().images
    assert record.width == image.size[0] and record.duration is not None
    assert image.path == record.image_path


@both
def test_cache_hit_and_no_cache(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    run_cell(shell, "%%yandexart --seed 42\na cached owl")
    first = shell.user_ns["_"]
    created = thread_emulator.stats.operations_created
    result, captured = run_cell(shell, "%%yandexart --seed 42\na cached owl")
    again = shell.user_ns["_"]
    assert result.success and again.cached and again.operation_id == first.operation_id
    assert thread_emulator.stats.operations_created == created  # no API call
    assert "cached" in captured.outputs[-1].data["text/html"]
    run_cell(shell, "%%yandexart --seed 42 --no-cache\na cached owl")
    assert shell.user_ns["_"].operation_id != first.operation_id and not shell.user_ns["_"].cached
    assert thread_emulator.stats.operations_created == created + 1
    run_cell(shell, "%%yandexart --seed 42 --aspect wide\na cached owl")  # another request: not cached
    assert thread_emulator.stats.operations_created == created + 2


@both
def test_without_seed_never_cached(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    run_cell(shell, "%%yandexart\nrandom seed")
    run_cell(shell, "%%yandexart\nrandom seed")
    assert thread_emulator.stats.operations_created == 2


@both
def test_failure_cancel_timeout_and_expiry_are_recorded(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    store = get_store()
    thread_emulator.inject("fail", "start", message="kaput")
    failed = shell.run_cell("%%yandexart --seed 1\nfailing").error_in_exec
    assert isinstance(failed, errors.OperationFailedError)
    record = store.get(failed.operation_id)
    assert record is not None and record.status == "failed" and "kaput" in (record.error or "")

    thread_emulator.config.duration = Duration("fixed", 30)
    timed_out = shell.run_cell("%%yandexart --seed 2 --timeout 0.3\nslow").error_in_exec
    assert isinstance(timed_out, errors.GenerationTimeoutError)
    assert store.get(timed_out.operation_id).status == "pending"  # type: ignore[union-attr]

    run_cell(shell, "%%yandexart --background --seed 3\ncancel me")
    job = shell.user_ns["_"]
    run_cell(shell, "import asyncio\nawait asyncio.sleep(0.4)")
    run_cell(shell, f"%yandexart cancel {job.id}")
    assert store.get(job.status.operation_ids[0]).status == "cancelled"  # type: ignore[union-attr]

    thread_emulator.config.keep_seconds = 0
    expired = shell.run_cell(f"%yandexart resume {timed_out.operation_id}").error_in_exec
    thread_emulator.config.keep_seconds = 3 * 24 * 3600
    assert isinstance(expired, errors.OperationNotFoundError)
    record = store.get(timed_out.operation_id)
    assert record is not None and record.status == "expired" and "three days" in (record.error or "")


@both
def test_background_and_resume_are_recorded(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    run_cell(shell, "%%yandexart --background --seed 8\nin the back")
    run_cell(shell, "_img = await _")
    assert get_store().get(shell.user_ns["_img"].operation_id).status == "done"  # type: ignore[union-attr]
    thread_emulator.config.duration = Duration("fixed", 30)
    shell.run_cell("%%yandexart --seed 9 --timeout 0.2\nlater")
    op = get_store().pending()[0].operation_id
    thread_emulator.operations[op].ready_at = 0  # it finishes on the server meanwhile
    result, _ = run_cell(shell, f"%yandexart resume {op}")
    assert result.success, result.error_in_exec
    image = shell.user_ns["_"]
    assert image.seed == 9 and image.prompt == "later"  # the request comes back from the store
    assert get_store().get(op).status == "done"  # type: ignore[union-attr]
    reads = thread_emulator.stats.by_phase["poll"]
    run_cell(shell, f"%yandexart resume {op}")  # now straight from the store
    assert thread_emulator.stats.by_phase["poll"] == reads


@both
def test_pending_and_resume_all(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    thread_emulator.config.duration = Duration("fixed", 30)
    shell.run_cell("%%yandexart --seed 1 2 --timeout 0.2\ntwo slow ones")
    pending = get_store().pending()
    assert len(pending) == 2
    _, listing = run_cell(shell, "%yandexart pending")
    text = listing.outputs[0].data["text/plain"]
    assert all(r.operation_id in text for r in pending) and "resume --all" in text
    for record in pending:
        thread_emulator.operations[record.operation_id].ready_at = 0
    result, captured = run_cell(shell, "%yandexart resume --all")
    assert result.success, result.error_in_exec
    assert captured.outputs[-1].data["text/html"].count("<figure") == 2
    assert get_store().pending() == []
    _, listing = run_cell(shell, "%yandexart pending")
    assert "Nothing pending" in listing.outputs[0].data["text/plain"]


@both
def test_history_gallery_and_search(shell: InteractiveShell) -> None:
    run_cell(shell, "%%yandexart --seed 1\na green heron")
    run_cell(shell, "%%yandexart --seed 2\na red fox")
    _, captured = run_cell(shell, "%yandexart history -n 5")
    html = captured.outputs[0].data["text/html"]
    assert html.count("<figure") == 2 and "a green heron" in html and "seed 2" in html
    _, captured = run_cell(shell, "%yandexart history --search HERON")
    assert captured.outputs[0].data["text/html"].count("<figure") == 1
    # numbered as in the whole history, so that rerun #N and compare #N name the one shown
    assert captured.outputs[0].data["text/plain"].startswith("#2 · seed 1")
    _, captured = run_cell(shell, "%yandexart rerun #2")
    assert shell.user_ns["_"].prompt == "a green heron"
    assert repr(yart_jupyter.history(search="heron")).startswith("#2 · seed 1")
    records = yart_jupyter.history(search="fox")
    assert [r.prompt for r in records] == ["a red fox"]
    assert get_store().thumbnail_path(records[0].operation_id).exists()
    assert yart_jupyter.history(-2) == [] and len(yart_jupyter.history(1)) == 1  # both stores agree (no SQL error)
    # in a notebook the list shows itself as the gallery (not a wall of Record reprs); printed, a line each
    both_records = yart_jupyter.history(5)
    bundle = both_records._repr_mimebundle_()
    assert 'class="yart-history"' in bundle["text/html"] and bundle["text/html"].count("<img ") == 2
    assert repr(both_records).splitlines()[0].startswith("#1 · seed 2") and "Record(" not in repr(both_records)


@both
def test_prune(shell: InteractiveShell) -> None:
    run_cell(shell, "%%yandexart --seed 1 2 3\nthree to prune")
    store = get_store()
    assert store.count() == 3
    for bad in ({"older_than_days": -1}, {"max_megabytes": float("nan")}):  # -1 days would prune everything
        with pytest.raises(errors.RequestValidationError, match="must not be negative"):
            yart_jupyter.prune(**bad)
    assert store.count() == 3
    removed, freed = yart_jupyter.prune(max_megabytes=0)
    assert removed == 3 and freed > 0 and store.count() == 0
    assert not list(store.images.iterdir())
    run_cell(shell, "%%yandexart --seed 4\nold one")
    _, captured = run_cell(shell, "%yandexart prune --older-than 1w")  # a unit: nothing is a week old
    assert "Pruned 0 records" in captured.outputs[0].data["text/plain"]
    _, captured = run_cell(shell, "%yandexart prune --older-than 0")
    assert "Pruned 1 record" in captured.outputs[0].data["text/plain"]
    assert isinstance(shell.run_cell("%yandexart prune").error_in_exec, errors.YandexArtError)


@both
def test_save_and_out_copy_from_the_store(shell: InteractiveShell, tmp_path: Path) -> None:
    run_cell(shell, "%%yandexart --seed 6 --out copy.jpg\nsaved")
    image: GeneratedImage = shell.user_ns["_"]
    assert image.path is not None
    assert picture_data((tmp_path / "copy.jpg").read_bytes()) == picture_data(image.path.read_bytes())
    image.path.write_bytes(image.path.read_bytes())  # the stored file is the source of the copy
    assert picture_data(image.save(tmp_path / "again.jpg").read_bytes()) == picture_data(image.image_bytes)


@both
async def test_python_api_records_and_caches(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    from yart_jupyter.clients.shared import close_shared_clients

    first = await yart_jupyter.generate("api cache", seed=3, base_url=emulator.url)
    second = await yart_jupyter.generate("api cache", seed=3, base_url=emulator.url)
    third = await yart_jupyter.generate("api cache", seed=3, base_url=emulator.url, cache=False)
    await close_shared_clients()
    assert second.cached and second.operation_id == first.operation_id
    assert not third.cached and emulator.stats.operations_created == 2
    assert get_store().get(third.operation_id).status == "done"  # type: ignore[union-attr]


@pytest.mark.parametrize("timeout", [0, -1, "5", float("nan")])
async def test_a_timeout_that_cannot_be_waited_sends_nothing(timeout: object, emulator: Emulator,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A zero, negative or non-numeric timeout from Python is refused before anything is recorded or
    sent (it would start a generation, spend the quota on it and give up at once)."""
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    monkeypatch.setenv("YANDEXART_BASE_URL", emulator.url)
    calls = (lambda: yart_jupyter.generate("too soon", seed=1, timeout=timeout),  # type: ignore[arg-type]
             lambda: yart_jupyter.resume("nosuchop", timeout=timeout))  # type: ignore[arg-type]
    for call in calls:
        with pytest.raises(errors.RequestValidationError, match=r"timeout .* must be a positive number of seconds"):
            await call()
    with pytest.raises(errors.RequestValidationError, match="timeout"):
        yart_jupyter.submit("too soon", seed=1, timeout=timeout)  # type: ignore[arg-type]
    assert emulator.stats.requests == 0 and get_store().history(None) == []


def test_no_credential_in_the_store(shell: InteractiveShell, isolated_store: Path) -> None:
    run_cell(shell, "%%yandexart --seed 1\nsecret check")
    for path in isolated_store.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes()


def _writer(home: str, worker: int, count: int) -> None:
    store = Store(home)
    for i in range(count):
        request = build_request(f"worker {worker} #{i}", seed=i + 1, folder_id="f")
        op = f"w{worker}op{i:04d}"
        store.record_started(op, request)
        store.record_failed(op, "failed", "test")


def test_two_processes_write_at_once(isolated_store: Path) -> None:
    Store(isolated_store)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(isolated_store), w, 150)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    with contextlib.closing(sqlite3.connect(isolated_store / "yart.sqlite3")) as db:  # closed, not only committed
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT operation_id) FROM generations").fetchone() == (300, 300)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.timeout(180)
@pytest.mark.long
def test_kernel_killed_while_pending_is_resumed(isolated_store: Path, tmp_path: Path) -> None:
    """SIGKILL a kernel mid-wait; a new kernel lists the operation as pending and collects it."""


    with standalone("--duration", "4") as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("YC_", "YANDEXART_"))}
        env.update(YANDEXART_BASE_URL=url, YC_API_KEY=KEY, YC_FOLDER_ID=FOLDER, YANDEXART_HOME=str(isolated_store))
        km, kc = start_kernel(env)
        try:
            execute(kc, "%load_ext yart_jupyter")
            kc.execute("%%yandexart --seed 77\nsurvives a crash")
            store = Store(isolated_store)
            deadline = time.monotonic() + 30
            while not store.pending() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert store.pending(), "the operation id was not committed before waiting"
            os.kill(km.provisioner.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        km, kc = start_kernel(env)
        try:
            execute(kc, "%load_ext yart_jupyter")
            _, messages = execute(kc, "%yandexart pending")
            listing = " ".join(m["content"].get("data", {}).get("text/plain", "") for m in messages)
            op = store.pending()[0].operation_id
            assert op in listing
            content, messages = execute(kc, "%yandexart resume --all\nprint(_[0].seed, _[0].prompt)", timeout=60)
            assert content["status"] == "ok", content
            printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
            assert "77 survives a crash" in printed
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        record = store.get(op)
        assert record is not None and record.status == "done" and record.image_path.exists()  # type: ignore[union-attr]
