"""A team's store on PostgreSQL: one history, one cache, one quota; pending stays with its owner; faults;
passwords and hostile text. Every test runs against a real PostgreSQL (a throwaway cluster)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import yart_jupyter
from yart_jupyter import errors
from yart_jupyter.clients.shared import close_shared_clients
from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.engine import unfinished_items
from yart_jupyter.store import get_store
from yart_jupyter.store.registry import forget_stores
from yart_jupyter.store.store import Store
from yart_jupyter.store.team import TeamStore

from .conftest import FOLDER, KEY, fast_config
from .helpers import run_cell
from .postgres import PASSWORD, Cluster

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def team(team_store_url: str, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """The Python API on a team store and the emulator, as the user ``alice``."""
    monkeypatch.setenv("YANDEXART_STORE", team_store_url)
    monkeypatch.setenv("YANDEXART_BASE_URL", emulator.url)
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    monkeypatch.setenv("YANDEXART_USER", "alice")
    return team_store_url


async def test_a_teammates_picture_is_free_and_says_whose(team: str, emulator: Emulator,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    first = await yart_jupyter.generate("a shared heron", seed=11)
    monkeypatch.setenv("YANDEXART_USER", "bob")
    again = await yart_jupyter.generate("a shared heron", seed=11)
    await close_shared_clients()
    assert emulator.stats.operations_created == 1  # bob paid nothing
    assert again.cached and again.operation_id == first.operation_id and again.made_by == "alice"
    assert again.image_bytes == first.image_bytes
    assert "cached from alice" in again.caption()
    assert yart_jupyter.history() == []  # bob's own history is empty
    team_history = yart_jupyter.history(team=True)
    assert [(r.owner, r.prompt) for r in team_history] == [("alice", "a shared heron")]
    assert team_history[0].host


async def test_pending_stays_with_its_owner(team: str, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator.config.duration = Duration("fixed", 30)
    with pytest.raises(errors.GenerationTimeoutError) as raised:
        await yart_jupyter.generate("alice's slow one", seed=3, timeout=0.2)
    op = raised.value.operation_id
    monkeypatch.setenv("YANDEXART_USER", "bob")
    store = get_store()
    assert store.pending() == [] and unfinished_items(store) == []  # resume --all leaves it to alice
    assert [r.operation_id for r in store.pending(team=True)] == [op]
    emulator.operations[op].ready_at = 0
    image = await yart_jupyter.resume(op)  # by its id, bob may collect it
    await close_shared_clients()
    assert image.seed == 3 and store.get(op).status == "done"  # type: ignore[union-attr]


def test_magics_show_mine_and_the_teams(shell: InteractiveShell, team_store_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YANDEXART_STORE", team_store_url)
    monkeypatch.setenv("YANDEXART_USER", "alice")
    run_cell(shell, "%%yandexart --seed 1\nan owl by alice")
    monkeypatch.setenv("YANDEXART_USER", "bob")
    run_cell(shell, "%%yandexart --seed 2\na fox by bob")
    _, mine = run_cell(shell, "%yandexart history")
    assert "a fox by bob" in mine.outputs[0].data["text/plain"] and "owl" not in mine.outputs[0].data["text/plain"]
    _, everyone = run_cell(shell, "%yandexart history --team")
    html = everyone.outputs[0].data["text/html"]
    assert "an owl by alice" in html and "· by alice</figcaption>" in html and "· by bob" not in html
    lines = everyone.outputs[0].data["text/plain"].splitlines()  # #N names mine only: rerun #1 is bob's fox
    assert lines[0].startswith("#1 · seed 2") and lines[1].startswith("seed 1") and "by alice" in lines[1]
    assert "Nothing pending" in run_cell(shell, "%yandexart pending --team")[1].outputs[0].data["text/plain"]


def test_the_password_never_shows(team_store_url: str, shell: InteractiveShell, caplog: pytest.LogCaptureFixture,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert PASSWORD in team_store_url
    store = TeamStore(team_store_url, cache=Path(os.environ["YANDEXART_HOME"]))
    assert PASSWORD not in repr(store) and PASSWORD not in store.location
    wrong = team_store_url.rsplit("/", 1)[0] + "/no_such_database"
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.StorageError) as raised:
        TeamStore(wrong, cache=Path(os.environ["YANDEXART_HOME"]), connect_timeout=1)
    assert PASSWORD not in str(raised.value) and "no_such_database" in str(raised.value)
    assert PASSWORD not in caplog.text
    # %config would save the password into the notebook: refused, with where it goes instead
    from yart_jupyter.core.settings import current

    shell.run_cell(f"%config YandexArt.store = {team_store_url!r}")
    assert current().store is None and "PGPASSWORD" in caplog.text
    monkeypatch.setenv("YANDEXART_STORE", team_store_url)  # the environment may hold it
    _, captured = run_cell(shell, "%%yandexart --seed 4\npassword check")
    assert PASSWORD not in json.dumps([o.data for o in captured.outputs])
    assert current().store == team_store_url and PASSWORD not in repr(current())
    store.close()


def test_hostile_text_is_only_data(team_store_url: str, monkeypatch: pytest.MonkeyPatch,
                                   emulator: Emulator) -> None:
    hostile = "'); DROP TABLE generations; -- 100% ?%s $1 \\ \"quoted\" \u0000-free ü"
    monkeypatch.setenv("YANDEXART_USER", "o'brien; DROP TABLE images; --")
    store = get_store(team_store_url)
    request = yart_jupyter.core.request.build_request(hostile.replace("\u0000", ""), seed=9, folder_id="f")
    store.record_queued(request, "key'1", notebook="note%s?'book.ipynb")
    store.record_started("op'); --", request, key="key'1")
    record = store.get("op'); --")
    assert record is not None and record.prompt == request.prompt and record.owner == "o'brien; DROP TABLE images; --"
    assert store.history(search="100% ?%s")[0].operation_id == "op'); --"
    assert store.history(search="%") != [] and store.history(search="_x") == []
    assert store.count() == 1


def test_a_slot_whose_request_never_left_is_given_back(team_store_url: str) -> None:
    """The team's quota ledger: a slot released (its request's connection never opened) counts for
    nothing, so the window has room again at once."""
    store = get_store(team_store_url)
    assert isinstance(store, TeamStore)
    ledger = store.quota_ledger()
    slots = [ledger.claim("starts", 2, 60.0) for _ in range(2)]
    assert all(wait == 0 and slot is not None for wait, slot in slots)
    assert ledger.claim("starts", 2, 60.0)[0] > 0  # full
    first = slots[0][1]
    assert first is not None
    ledger.release(first)
    wait, slot = ledger.claim("starts", 2, 60.0)
    assert wait == 0 and slot is not None


def test_a_newer_schema_is_refused(team_store_url: str) -> None:
    store = get_store(team_store_url)  # a new database: migrated to this package's version on connect
    assert store._query("SELECT value FROM store_meta WHERE name='schema_version'")[0][0] == "1"
    store._write(lambda db: db.execute("UPDATE store_meta SET value='99' WHERE name='schema_version'"))
    forget_stores()
    with pytest.raises(errors.StorageError) as raised:
        get_store(team_store_url)
    assert "newer" in str(raised.value) and "upgrade" in str(raised.value) and "\n" not in str(raised.value)


async def test_unreachable_database_sends_nothing(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("YANDEXART_STORE", f"postgresql://team:{PASSWORD}@127.0.0.1:{port}/yart")
    monkeypatch.setenv("YANDEXART_BASE_URL", emulator.url)
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    with pytest.raises(errors.StorageError) as raised:
        await yart_jupyter.generate("never sent", seed=1)
    await close_shared_clients()
    assert emulator.stats.requests == 0
    assert "\n" not in str(raised.value) and PASSWORD not in str(raised.value) and str(port) in str(raised.value)


async def test_the_database_restarts_during_a_batch(team: str, emulator: Emulator, pg_cluster: Cluster) -> None:
    emulator.config.duration = Duration("fixed", 1.0)
    job = yart_jupyter.submit("restart survivor", seed=1)
    jobs = [job, *(yart_jupyter.submit("restart survivor", seed=n) for n in range(2, 9))]
    await asyncio.sleep(0.3)  # every start out, waits in progress
    await asyncio.to_thread(pg_cluster.restart, 1.0)
    images = await asyncio.gather(*jobs)
    await close_shared_clients()
    store = get_store()
    assert len(images) == 8 and {r.status for r in store.history(None)} == {"done"} and store.count() == 8
    assert emulator.stats.operations_created == 8


def test_copy_a_local_store_into_the_team_store(shell: InteractiveShell, team_store_url: str,
                                                isolated_store: Path) -> None:
    run_cell(shell, "%%yandexart --seed 1-2 --vary \"style=ink|oil\"\na copied lighthouse, {style}")
    local = Store(isolated_store)
    assert local.count() == 4
    command = [sys.executable, "-m", "yart_jupyter.cli", "store", "copy", str(isolated_store), team_store_url]
    first = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "copied 4 records (4 pictures) and 1 sweep" in first.stdout and "4/4 records" in first.stderr
    assert PASSWORD not in first.stdout + first.stderr
    again = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert "copied 0 records (0 pictures) and 0 sweeps; 4 already there" in again.stdout
    forget_stores()
    team_store = TeamStore(team_store_url, cache=isolated_store / "elsewhere")  # another machine: no files yet
    for record in local.history(None):
        copied = team_store.get(record.operation_id)
        assert copied is not None and copied.image_path is not None and copied.owner
        assert copied.image_path.read_bytes() == record.image_path.read_bytes()  # type: ignore[union-attr]
    assert len(team_store.experiments()) == 1
    team_store.close()


@pytest.mark.timeout(180)
@pytest.mark.long
def test_four_processes_share_one_quota(pg_cluster: Cluster) -> None:
    """4 processes (3 x 40 generations, 1 x 80), a quota of 100 per window: no 429, nothing lost or made
    twice; the big one is killed with pictures made and more on their way (pending, or queued for the
    next window), and its owner resumes them."""
    window = 4.0
    url = pg_cluster.new_database()
    emulator = Emulator(fast_config(generate_per_minute=100, generate_window=window, duration=Duration("fixed", 0.3)))
    emulator.start_in_thread()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YC_", "YANDEXART_"))}
    env["YANDEXART_HOME"] = os.environ["YANDEXART_HOME"]

    def start(user: str, first: int, count: int, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "tests.team_worker", url, user, emulator.url, str(first),
                                 str(count), str(window), *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)

    def member3() -> dict[str, int]:
        return {status: int(n) for status, n in store._query(
            "SELECT status, COUNT(*) FROM generations WHERE owner='member3' GROUP BY status")}

    try:
        workers = [start(f"member{i}", 1000 * i, 80 if i == 3 else 40) for i in range(4)]
        store = get_store(url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until member3 has pictures and more on their way
            counts = member3()
            if counts.get("done", 0) >= 5 and sum(counts.values()) - counts.get("done", 0) >= 10:
                break
            time.sleep(0.05)
        os.kill(workers[3].pid, signal.SIGKILL)
        results = [json.loads(w.communicate(timeout=120)[0]) for w in workers[:3]]
        workers[3].communicate(timeout=10)  # killed: its pipe closed
        os.environ["YANDEXART_USER"] = "member3"
        try:
            left = unfinished_items(store)
        finally:
            del os.environ["YANDEXART_USER"]
        resumed = start("member3", 3000, 0, "--resume")
        resumed_result = json.loads(resumed.communicate(timeout=120)[0])
        records = store.history(None, team=True)
        stats = emulator.stats
    finally:
        emulator.stop_thread()
    assert [r["done"] for r in results] == [40, 40, 40] and not any(r["failed"] for r in results)
    assert len(left) >= 10 and resumed_result["done"] == resumed_result["items"] == len(left)
    assert not resumed_result["failed"]
    assert stats.by_status.get(429, 0) == 0, stats.refused
    assert len(records) == 200 and {r.status for r in records} == {"done"}  # nothing lost
    assert len({r.prompt for r in records}) == 200
    assert stats.operations_created == 200  # nothing generated twice


def test_a_sweep_and_the_days_count_are_the_teams(shell: InteractiveShell, team_store_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YANDEXART_STORE", team_store_url)
    monkeypatch.setenv("YANDEXART_USER", "alice")
    run_cell(shell, '%%yandexart --seed 1-2 --vary "style=ink|oil"\na shared sweep, {style}')
    experiment_id = shell.user_ns["_"].id
    monkeypatch.setenv("YANDEXART_USER", "bob")
    store = get_store()
    assert store.starts_since(time.time() - 86_400)[0] == 4  # alice's starts count against bob's day
    result, _ = run_cell(shell, f"%yandexart history --experiment {experiment_id[:8]}")
    assert result.success and shell.user_ns["_"].id == experiment_id  # bob sees alice's sweep again
    assert all(slot.image is not None and slot.image.made_by == "alice" for slot in shell.user_ns["_"].slots)
