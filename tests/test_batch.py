"""Batch runs from a table and the ``yart`` command, against the emulator on loopback."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from yart_jupyter import batch, configure
from yart_jupyter.batches import BatchInputError, BatchResult, derived_seed, load_rows
from yart_jupyter.clients.shared import close_shared_clients
from yart_jupyter.clients.transport import RetryPolicy
from yart_jupyter.core.settings import current
from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.store import get_store

from .conftest import FOLDER, KEY, Ran
from .helpers import interruptible, run_cells
from .shared_data import PHOTO

ROWS = [{"subject": s, "style": t} for s in ("a fox", "an owl", "a heron") for t in ("ink", "watercolour")]


@pytest.fixture
async def env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv("YANDEXART_BASE_URL", emulator.url)
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    monkeypatch.chdir(tmp_path)
    yield emulator
    configure(generations_per_day=None)
    await close_shared_clients()


def metadata(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


async def test_a_table_becomes_a_dataset_and_a_second_run_sends_nothing(env: Emulator, tmp_path: Path) -> None:
    result = await batch(ROWS, prompt="{subject}, {style}", out="dataset/{n:05d}.jpg")
    assert isinstance(result, BatchResult) and result.left == 0
    assert [r["status"] for r in result.records()] == ["done"] * 6
    assert env.stats.operations_created == 6
    files = sorted(p.name for p in (tmp_path / "dataset").iterdir())
    assert files == [f"{n:05d}.jpg" for n in range(1, 7)] + ["metadata.jsonl"]
    lines = metadata(tmp_path / "dataset")
    assert [line["file_name"] for line in lines] == [f"{n:05d}.jpg" for n in range(1, 7)]
    first = lines[0]
    assert first["subject"] == "a fox" and first["style"] == "ink" and first["prompt"] == "a fox, ink"
    assert first["seed"] == derived_seed("a fox, ink", ROWS[0]) and first["operation_id"] and first["row"] == 1
    records = result.records()
    for field in ("row", "prompt", "seed", "aspect", "status", "error", "operation_id", "model_version",
                  "duration", "file"):
        assert field in records[0]
    assert result.to_pandas().shape == (6, 10)
    # the same batch again: every row is done already, nothing is sent, metadata has no duplicates
    again = await batch(ROWS, prompt="{subject}, {style}", out="dataset/{n:05d}.jpg")
    assert [r.status for r in again.rows] == ["earlier"] * 6 and env.stats.operations_created == 6
    assert len(metadata(tmp_path / "dataset")) == 6
    # the same prompts into another folder: answered from the store, still nothing sent
    elsewhere = await batch(ROWS, prompt="{subject}, {style}", out="copy/{subject}-{style}.jpg")
    assert [r.status for r in elsewhere.rows] == ["cached"] * 6 and env.stats.operations_created == 6
    assert (tmp_path / "copy" / "an owl-watercolour.jpg").read_bytes()[:2] == b"\xff\xd8"


async def test_a_dataset_made_across_a_model_update_says_so(env: Emulator) -> None:
    """Rows made on one model version, then more after the service moved to another (a run resumed
    days later): the summary says the dataset is not one experiment."""
    env.config.model_version = "v1"
    first = await batch(ROWS[:4], prompt="{subject}, {style}", out="dataset/")
    assert "model versions" not in first.summary()
    env.config.model_version = "v2"
    second = await batch(ROWS, prompt="{subject}, {style}", out="dataset/")
    assert [r["status"] for r in second.records()] == ["earlier"] * 4 + ["done"] * 2
    assert second.summary().endswith("⚠ the pictures come from 2 model versions (v1: 4 rows, v2: 2 rows): the same "
                                     "seed on another version is a different picture")


async def test_csv_jsonl_and_dataframe_sources(env: Emulator, tmp_path: Path) -> None:
    import pandas as pd

    with open(tmp_path / "rows.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["subject", "style", "aspect"])
        writer.writeheader()
        writer.writerows([{"subject": "a boat", "style": "ink", "aspect": "16:9"},
                          {"subject": "лиса", "style": "гуашь", "aspect": "1:1"}])
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS[:2]) + "\n")
    assert load_rows(tmp_path / "rows.csv")[1] == {"subject": "лиса", "style": "гуашь", "aspect": "1:1"}
    assert load_rows(str(tmp_path / "rows.jsonl")) == ROWS[:2]
    assert load_rows(pd.DataFrame(ROWS[:3])) == ROWS[:3]
    # a spreadsheet's ";"-separated CSV (many locales), a quoted comma in a value kept as it is
    (tmp_path / "semi.csv").write_text('subject;style\n"a fox, red";ink\nan owl;oil\n', encoding="utf-8")
    assert load_rows(tmp_path / "semi.csv") == [{"subject": "a fox, red", "style": "ink"},
                                                {"subject": "an owl", "style": "oil"}]
    result = await batch(tmp_path / "rows.csv", prompt="{subject}, {style}", aspect="{aspect}", seed=7,
                         out="csv/{n}-{seed}.jpg")
    assert [(r.request.seed, str(r.request.aspect)) for r in result.rows] == [(7, "16:9"), (7, "1:1")]
    assert (tmp_path / "csv" / "2-7.jpg").exists() and result.rows[1].request.prompt == "лиса, гуашь"


@pytest.mark.parametrize(("rows", "options", "expected"), [
    (ROWS, {"prompt": "{subject}, {colour}"}, "the prompt template names {colour}, which is not a column"),
    (ROWS, {"prompt": "{subjct}"}, "names {subjct}, which is not a column of the table (did you mean {subject}? "
                                   "columns: subject, style)"),
    ([], {"prompt": "{subject}"}, "the table has no rows"),
    ([{"subject": "x" * 501}, {"subject": "ok"}, {"subject": ""}], {"prompt": "{subject}"},
     "2 of 3 rows are invalid (row 1: prompt "),
    (ROWS, {"prompt": "{subject}", "out": "d/{subject}.jpg"}, "row 2: out "),
    (ROWS, {"prompt": "{subject}", "out": "one.jpg"}, "names one file for 6 rows"),
    (ROWS, {"prompt": "{subject}, {style}", "out": "d/{n}.png"}, "rows 1, 2, 3, 4, 5 and 6: out 'd/{n}.png' is "
     "invalid: ends in .png but the picture is image/jpeg: name it .jpg, or ask for image/png"),
    (ROWS, {"prompt": "{subject}", "aspect": "7:1"}, "the ratio must lie between 1:4 and 4:1"),
    ("rows.txt", {"prompt": "{subject}"}, "give a .csv, .tsv or .jsonl file"),
    ([{"subject": "a fox"}] * 20, {"prompt": "{subject}", "model": "aliceai-image-art-3.0", "seed": 4},
     "20 of 20 rows are invalid (rows 1, 2, 3, 4, 5 and 15 more: seed 4 is invalid: aliceai-image-art-3.0 takes no "
     "seed (every request is a new picture): leave the seed out; each request is another sample (the magic's "
     "--count N asks for N)); fix them or skip them (skip_invalid=True; yart batch --skip-invalid)"),
    ([{"subject": "x" * 501}, {"subject": "ok"}, {"subject": ""}, {"subject": "x" * 501}], {"prompt": "{subject}"},
     "3 of 4 rows are invalid (rows 1 and 4: prompt "),
])
async def test_bad_input_is_one_line_with_row_numbers(
    env: Emulator, rows: Any, options: dict[str, Any], expected: str,
) -> None:
    with pytest.raises(BatchInputError) as caught:
        batch(rows, **options)
    assert expected in str(caught.value) and "Nothing was sent" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert env.stats.operations_created == 0 and get_store().history(None) == []


async def test_bad_files_and_folders(env: Emulator, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "bad.jsonl").write_text('{"subject": "a fox"}\n{"subject": \n')
    (tmp_path / "ragged.csv").write_text("subject,style\na fox,ink,extra\n")
    for name, expected in (("empty.csv", "is empty (no header row)"), ("bad.jsonl", "line 2 is not valid JSON"),
                           ("ragged.csv", "line 2 has more fields than the header")):
        with pytest.raises(BatchInputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            batch(tmp_path / name, prompt="{subject}")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(BatchInputError, match="cannot be written"):
        batch(ROWS, prompt="{subject}", out="a-file/{n}.jpg")
    (tmp_path / "locked").mkdir(mode=0o500)
    if not os.access(tmp_path / "locked", os.W_OK):  # root can write anywhere
        with pytest.raises(BatchInputError, match="cannot be written"):
            batch(ROWS, prompt="{subject}", out="locked/{n}.jpg")
    assert env.stats.operations_created == 0


async def test_skip_invalid_runs_the_rest(env: Emulator, tmp_path: Path) -> None:
    rows = [{"subject": "a fox"}, {"subject": "x" * 600}, {"subject": "an owl"}]
    result = await batch(rows, prompt="{subject}", out="skip/{n}.jpg", skip_invalid=True)
    assert [r.status for r in result.rows] == ["done", "invalid", "done"]
    assert "at most 500 characters" in (result.rows[1].error or "")
    assert env.stats.operations_created == 2 and result.left == 0


async def test_the_daily_quota_stops_cleanly_and_the_next_run_continues(env: Emulator, tmp_path: Path) -> None:
    configure(generations_per_day=4)
    result = await batch(ROWS, prompt="{subject}, {style}", out="quota/{n}.jpg")
    assert [r.status for r in result.rows].count("done") == 4 and result.left == 2
    assert "The daily quota (4 generations) ran out: 2 rows are left; it frees from" in result.summary()
    assert env.stats.operations_created == 4
    assert {r.status for r in get_store().history(None)} == {"done", "cancelled"}  # nothing left half-asked
    configure(generations_per_day=5000)  # "the next day"
    again = await batch(ROWS, prompt="{subject}, {style}", out="quota/{n}.jpg")
    assert [r.status for r in again.rows] == ["earlier"] * 4 + ["done"] * 2
    assert env.stats.operations_created == 6 and len(metadata(tmp_path / "quota")) == 6


async def test_the_service_saying_the_day_is_used_up_stops_it_too(env: Emulator, tmp_path: Path) -> None:
    env.config.generate_per_day = 3
    result = await batch(ROWS, prompt="{subject}, {style}", out="server/{n}.jpg")
    assert [r.status for r in result.rows].count("done") == 3
    assert all(r.status in ("done", "quota") for r in result.rows) and result.left == 3
    assert "ran out" in result.summary()


async def test_a_per_minute_429_is_never_the_days_quota(env: Emulator, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's per-minute refusal (``ai.imageGenerationRequestsPerMinute.rate exceeded``, spent by
    anyone sharing the folder) left after the retries is a failed row to make again, not "the daily
    quota ran out, come back tomorrow"."""
    # every retry is still made, without the back-off's 5-10 s between them (what is checked is the outcome)
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, retry, retry_after=None: 0.01)
    env.inject("status", phase="start", times=100, status=429, retry_after=0,
               message="ai.imageGenerationRequestsPerMinute.rate exceeded")
    result = await batch(ROWS[:2], prompt="{subject}, {style}", out="minute/{n}.jpg")
    assert [r.status for r in result.rows] == ["failed", "failed"]
    assert all("minute-term quota" in (r.error or "") and "run the batch again" in (r.error or "")
               for r in result.rows)
    assert result.quota_note is None and "ran out" not in result.summary() and result.left == 2
    env.reset()
    again = await batch(ROWS[:2], prompt="{subject}, {style}", out="minute/{n}.jpg")
    assert [r.status for r in again.rows] == ["done", "done"]


def test_a_quota_refusal_says_which_quota() -> None:
    from yart_jupyter.core.errors import QuotaExceededError, quota_period

    assert quota_period("ai.imageGenerationRequestsPerMinute.rate exceeded") == "minute"
    assert quota_period("ai.imageGenerationRequestsPerDay.rate exceeded") == "day"
    assert quota_period("Quota exceeded: operation reads limit is 50 per 1 s") == "second"
    assert quota_period("Quota exceeded") is None
    assert QuotaExceededError("Quota exceeded: ai.imageGenerationRequestsPerMinute.rate exceeded").period == "minute"


async def test_a_kill_between_the_file_and_its_metadata_line_is_completed_not_refused(
        env: Emulator, tmp_path: Path) -> None:
    """A process killed after writing a row's picture but before its metadata line: the next run
    recognises the file by its embedded recipe and completes the line from the store (free); a
    file that is not this row's picture is still never overwritten."""
    await batch(ROWS, prompt="{subject}, {style}", out="cut/{n}.jpg")
    lines = (tmp_path / "cut" / "metadata.jsonl").read_text().splitlines()
    (tmp_path / "cut" / "metadata.jsonl").write_text("\n".join(lines[:2] + lines[3:]) + "\n")  # row 3's line lost
    foreign = (tmp_path / "cut" / "5.jpg")
    foreign.write_bytes((tmp_path / "cut" / "6.jpg").read_bytes())  # row 6's picture where row 5's goes
    (tmp_path / "cut" / "metadata.jsonl").write_text(
        "\n".join(line for line in (tmp_path / "cut" / "metadata.jsonl").read_text().splitlines()
                  if json.loads(line)["file_name"] != "5.jpg") + "\n")
    again = await batch(ROWS, prompt="{subject}, {style}", out="cut/{n}.jpg")
    assert [r.status for r in again.rows] == ["earlier", "earlier", "cached", "earlier", "failed", "earlier"]
    assert "was not made by this batch" in (again.rows[4].error or "")
    assert env.stats.operations_created == 6  # nothing paid twice
    assert sorted(line["row"] for line in metadata(tmp_path / "cut")) == [1, 2, 3, 4, 6]


async def test_an_interrupted_batch_resumes_without_paying_twice(env: Emulator, tmp_path: Path) -> None:
    env.config.duration = Duration("uniform", 1.0, 2.0)
    job = batch(ROWS, prompt="{subject}, {style}", out="cut/{n}.jpg")
    while len(get_store().pending()) < 6:  # every start answered and recorded
        await asyncio.sleep(0.02)
    job.task.cancel()
    await asyncio.gather(job.task, return_exceptions=True)
    assert len(get_store().pending()) == 6  # every started operation is kept to collect
    env.config.duration = Duration("fixed", 0.1)
    result = await batch(ROWS, prompt="{subject}, {style}", out="cut/{n}.jpg")
    assert [r.status for r in result.rows] == ["done"] * 6 and env.stats.operations_created == 6
    assert len(metadata(tmp_path / "cut")) == 6 and get_store().pending() == []


async def test_a_dry_run_says_what_a_run_would_do_and_sends_nothing(env: Emulator, tmp_path: Path) -> None:
    """Every plan a row can have, each read from the files and the store as a run would: to start, a
    start recorded and never sent, still on the server, made earlier, from the store, someone
    else's file, invalid; and the day's room. Nothing is sent, recorded or written by a dry run."""
    from yart_jupyter.batches import BatchPreview, plan_table
    from yart_jupyter.core.status import BatchStatus
    from yart_jupyter.engine import Batch, prepare

    store = get_store()

    def dry(out: str, rows: list[dict[str, str]] = ROWS, **options: Any) -> BatchPreview:
        before = (env.stats.requests, store.count())
        preview = batch(rows, prompt="{subject}, {style}", out=out, dry_run=True, **options)
        assert (env.stats.requests, store.count()) == before
        assert out.startswith("cut") or not (tmp_path / out.split("/")[0]).exists()  # no folder made by it
        return preview

    into_folder = batch(ROWS, prompt="{subject}, {style}", out="folder/", dry_run=True)  # a file per row in it
    assert [r["file"] for r in into_folder.records()][:2] == ["folder/00001.jpg", "folder/00002.jpg"]
    fresh = dry("new/{n}.jpg")
    assert [r["plan"] for r in fresh.records()] == ["start"] * 6 and fresh.to_send == 6
    assert fresh.summary().startswith("6 rows: 6 to start; dataset in new. It takes 6 of the 500 generations")
    assert fresh.summary().endswith("Nothing was sent (dry run).") and "<table" in fresh._repr_html_()
    # a kernel that died right after recording row 1: its start goes out with its recorded key
    first = plan_table(ROWS, current(), prompt="{subject}, {style}", out="cut/{n}.jpg").rows[0].request
    assert first is not None
    prepare(store, Batch([first]), BatchStatus(1))
    assert [r["plan"] for r in dry("cut/{n}.jpg").records()][:2] == ["queued", "start"]
    # interrupted after every start was answered: all six are still on the server
    env.config.duration = Duration("uniform", 1.0, 2.0)
    job = batch(ROWS, prompt="{subject}, {style}", out="cut/{n}.jpg")
    while len(store.pending()) < 6:
        await asyncio.sleep(0.02)
    job.task.cancel()
    await asyncio.gather(job.task, return_exceptions=True)
    pending = dry("cut/{n}.jpg")
    assert pending.counts() == {"collect": 6} and "Nothing to send: it takes no quota" in pending.summary()
    env.config.duration = Duration("fixed", 0.1)
    await batch(ROWS, prompt="{subject}, {style}", out="cut/{n}.jpg")
    assert dry("cut/{n}.jpg").counts() == {"earlier": 6}
    assert dry("copy/{n}.jpg").counts() == {"store": 6}  # the same pictures into another folder: free
    (tmp_path / "cut" / "extra").mkdir()
    (tmp_path / "cut" / "extra" / "1.jpg").write_bytes(b"someone else's")
    rows = [*ROWS[:2], {"subject": "x" * 600, "style": "ink"}]
    mixed = dry("cut/extra/{n}.jpg", rows, skip_invalid=True)
    assert [r["plan"] for r in mixed.records()] == ["clash", "store", "invalid"]
    assert "at most 500 characters" in (mixed.records()[2]["error"] or "")
    # the day's room, as the store counted the starts of the last 24 hours (6 so far)
    configure(generations_per_day=8)
    later = dry("later/{n}.jpg", [{"subject": f"a new {n}", "style": "ink"} for n in range(5)])
    assert "so 2 can start today and 3 wait for a later run" in later.summary()
    assert env.stats.operations_created == 6


def test_cli_batch_dry_run(cli: Callable[..., Ran], tmp_path: Path, thread_emulator: Emulator) -> None:
    (tmp_path / "rows.csv").write_text("subject\na calm sea\na bright sea\n")
    plan = cli("batch", "rows.csv", "--prompt", "{subject}", "--out", "out/{n}.jpg", "--dry-run")
    assert plan.returncode == 0
    lines = plan.stdout.splitlines()
    assert lines[0] == "row\tplan\tseed\tfile\tprompt" and lines[1].startswith("1\tstart\t")
    assert lines[1].endswith("\tout/1.jpg\ta calm sea") and lines[-1].startswith("2 rows: 2 to start")
    assert thread_emulator.stats.requests == 0 and not (tmp_path / "out").exists()


async def test_the_folder_loads_as_a_hugging_face_dataset(
    env: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):  # loopback only
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    datasets = pytest.importorskip("datasets")
    await batch(ROWS, prompt="{subject}, {style}", out="hf/{n:05d}.jpg")
    await batch(ROWS, prompt="{subject}, {style}", out="hf/{n:05d}.jpg")  # a re-run adds no duplicates
    loaded = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "hf"), split="train",
                                   cache_dir=str(tmp_path / "hf-cache"))
    assert loaded.num_rows == 6
    assert {"image", "subject", "style", "prompt", "seed", "operation_id"} <= set(loaded.column_names)
    assert sorted(loaded["subject"]) == sorted(r["subject"] for r in ROWS)
    assert loaded[0]["image"].size == (1024, 1024)


async def test_progress_says_rate_and_time_left(env: Emulator) -> None:
    """Once a second has passed with pictures done and rows left, the line says the rate and the time left."""
    env.config.duration = Duration("uniform", 0.3, 3.0)
    rows = [{"subject": f"a bird {i}", "style": "ink"} for i in range(12)]
    seen: list[str] = []
    settings = current()
    from yart_jupyter.batches import plan_table, run_table
    from yart_jupyter.clients.shared import shared_client
    from yart_jupyter.core.status import BatchStatus

    planned = plan_table(rows, settings, prompt="{subject} {style}")
    status = BatchStatus(len(planned.rows))
    status.show_rate = True
    await run_table(shared_client(settings), get_store(settings.home), settings, planned, status,
              on_update=lambda s: seen.append(s.text()))
    assert any("/min" in text and "left" in text for text in seen), seen[-3:]


# -- the yart command -----------------------------------------------------------------------------

def yart(env: dict[str, str], cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "yart_jupyter.cli", *args], env=env, cwd=cwd, text=True,
                          capture_output=True, timeout=timeout)


def test_cli_generate_history_info_and_exit_codes(cli: Callable[..., Ran], tmp_path: Path,
                                                  thread_emulator: Emulator) -> None:
    done = cli("generate", "a red fox", "--seed", "3", "--aspect", "16:9", "-o", "fox.jpg")
    assert done.returncode == 0, done.stderr
    assert "fox.jpg" in done.stdout and "seed 3" in done.stdout and (tmp_path / "fox.jpg").exists()
    listed = cli("history")
    assert listed.returncode == 0 and "a red fox" in listed.stdout and "seed 3" in listed.stdout
    record = json.loads(cli("history", "--json").stdout)  # one object a line, for scripts
    assert (record["number"], record["seed"], record["aspect"], record["status"]) == (1, 3, "16:9", "done")
    assert record["prompt"] == "a red fox" and Path(record["file"]).is_file() and record["error"] is None
    assert cli("history", "--json", "--search", "no such").stdout == ""  # nothing matched: nothing printed
    info = cli("info", "fox.jpg")
    assert info.returncode == 0 and "%%yandexart --seed 3 --aspect 16:9" in info.stdout
    unknown = cli("info", "no-such.jpg")  # the input is wrong: exit code 2, one line
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "no-such.jpg" in unknown.stderr
    bad = cli("generate", "x" * 501)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "at most 500 characters" in bad.stderr
    exists = cli("generate", "a red fox", "--seed", "3", "-o", "fox.jpg")
    assert exists.returncode == 2 and "exists" in exists.stderr
    usage = cli("frobnicate")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
    assert "batch" in cli("--help").stdout
    assert cli("pending").stdout.strip() == "nothing pending"
    plan = cli("generate", "a red fox", "--seed", "2-4", "--aspect", "16:9", "--dry-run")
    assert plan.returncode == 0 and "3 generations (seed 3); 1 from the local store for free, 2 to send" in plan.stdout
    assert "\t".join(["3", "a red fox", "16:9", "yes"]) in plan.stdout and "Nothing was sent" in plan.stdout
    assert len(get_store().history(None)) == 1  # nothing recorded
    assert thread_emulator.stats.operations_created == 1


def test_cli_rerun(cli: Callable[..., Ran], tmp_path: Path, thread_emulator: Emulator) -> None:
    """yart rerun makes a picture again from a file's recipe, a history entry or an operation id,
    saves it beside the old name and says whether the pixels match; the history's numbers are what
    it takes, whatever the filter; a bad source is one line (exit code 2) and nothing is sent."""
    assert cli("generate", "a red fox", "--seed", "3", "-o", "fig3.jpg").returncode == 0
    assert cli("generate", "a blue whale", "--seed", "4").returncode == 0
    fox = cli("history", "--search", "fox").stdout
    assert fox.startswith("#2  ") and "a red fox" in fox  # the fox is my second newest
    cached = cli("rerun", "fig3.jpg")
    assert cached.returncode == 0 and cached.stdout.startswith("fig3-rerun.jpg  seed 3")
    assert "answered from the local store (no API call)" in cached.stdout
    made = cli("rerun", "fig3.jpg", "--no-cache")
    assert made.returncode == 0 and made.stdout.startswith("fig3-rerun-2.jpg  seed 3")
    assert "the new pixels are identical to the old ones" in made.stdout
    assert thread_emulator.stats.operations_created == 3
    by_number = cli("rerun", "#3", "--no-cache", "-o", "again-{seed}.jpg")  # the fox again, newest two after it
    assert by_number.returncode == 0 and "again-3.jpg  seed 3" in by_number.stdout, by_number.stderr
    assert (tmp_path / "again-3.jpg").exists()
    info = cli("info", "3")  # info takes the history's numbers too: the whale, between two reruns and the fox
    assert info.returncode == 0 and info.stdout.endswith("%%yandexart --seed 4 --aspect 1:1 --model "
                                                         "yandex-art/latest\na blue whale\n"), info.stdout
    compared = cli("compare", "fig3.jpg", "3", "#4")  # a file, the whale, the fox it was made from
    lines = compared.stdout.splitlines()
    assert compared.returncode == 0 and lines[0].split() == ["fig3.jpg", "#3", "#4"], compared.stdout
    assert lines[1].split() == ["prompt", "a", "red", "fox", "a", "blue", "whale", "a", "red", "fox"]
    assert lines[-1] == "differs: prompt, seed"
    assert lines[3].index("3") == lines[1].index("a red fox")  # columns aligned: the seeds under the prompts
    requests = thread_emulator.stats.requests
    (tmp_path / "plain.jpg").write_bytes(PHOTO.read_bytes())
    for bad, reason in ((["#9"], "yart rerun: history has no entry #9 (it has 4); yart history lists them."),
                        (["nowhere"], "yart rerun: 'nowhere' is neither a file, a history entry (#N) nor an operation"),
                        (["plain.jpg"], "plain.jpg"),
                        (["fig3.jpg", "-o", "one.png"], "-o 'one.png' is invalid")):
        refused = cli("rerun", *bad)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and reason in refused.stderr, refused.stderr
        assert not refused.stderr.startswith("yart: yart ")
    for bad, reason in ((["1"], "yart compare needs at least two pictures"),
                        (["1", "#9"], "yart compare: history has no entry #9 (it has 4); history lists them.")):
        refused = cli("compare", *bad)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and reason in refused.stderr, refused.stderr
        assert not refused.stderr.startswith("yart: yart ")
    assert thread_emulator.stats.requests == requests


def test_cli_rerun_check(cli: Callable[..., Ran], tmp_path: Path, thread_emulator: Emulator) -> None:
    """yart rerun --check: made anew (never answered from the store) and the exit code says whether
    the figure reproduces: 0 identical, 1 different; refused with nothing sent where no check can
    pass (a model without seeds)."""
    from yart_jupyter.core.request import AspectRatio, Message
    from yart_jupyter.media.image import GeneratedImage

    assert cli("generate", "a red fox", "--seed", "3", "-o", "fig.jpg").returncode == 0
    same = cli("rerun", "fig.jpg", "--check")
    assert same.returncode == 0 and "the new pixels are identical to the old ones" in same.stdout
    assert thread_emulator.stats.operations_created == 2  # made again, not answered from the store
    GeneratedImage(image_bytes=PHOTO.read_bytes(), mime_type="image/jpeg", seed=3, aspect=AspectRatio(1, 1),
                   messages=(Message("a red fox", 1.0),), operation_id="fbvt38u3kmbosuqp10bg",
                   model_uri=f"art://{FOLDER}/yandex-art/latest").save(tmp_path / "edited.jpg")
    differs = cli("rerun", "edited.jpg", "--check")  # its recipe, other pixels: it does not reproduce
    assert differs.returncode == 1 and "the new pixels differ from the old ones" in differs.stdout
    assert cli("generate", "a red fox", "--model", "aliceai-image-art-3.0", "-o", "alice.jpg").returncode == 0
    created = thread_emulator.stats.requests
    seedless = cli("rerun", "alice.jpg", "--check")
    assert seedless.returncode == 2 and "takes no seed" in seedless.stderr and "nothing was sent" in seedless.stderr
    assert thread_emulator.stats.requests == created


def test_cli_typos_say_what_was_meant(cli: Callable[..., Ran], thread_emulator: Emulator) -> None:
    """A mistyped command or option names the one most likely meant (exit code 2, nothing sent)."""
    for args, meant in ((["histroy"], "(did you mean history?)"), (["store", "cpy", "a", "b"], "(did you mean copy?)"),
                        (["generate", "a fox", "--sead", "3"], "(did you mean --seed?)"),
                        (["history", "--serch=fox"], "(did you mean --search?)")):
        ran = cli(*args)
        assert ran.returncode == 2 and ran.stderr.strip().endswith(meant), ran.stderr
    assert "did you mean" not in cli("generate", "a fox", "--bogus").stderr
    elsewhere = cli("generate", "a fox", "--skip-invalid")  # it had said "(did you mean --skip-invalid?)"
    assert elsewhere.returncode == 2
    assert elsewhere.stderr.strip().endswith("(--skip-invalid is an option of yart batch, not of yart generate)")
    assert thread_emulator.stats.requests == 0


def test_cli_resume_refuses_what_it_cannot_collect(cli: Callable[..., Ran], thread_emulator: Emulator) -> None:
    """An id with --all is one or the other; an Images API id the store does not hold is said to be
    one (the service keeps nothing of it) without asking the service or recording it."""
    both = cli("resume", "abc", "--all")
    assert both.returncode == 2 and "give an operation id or --all, not both" in both.stderr
    images = cli("resume", "img-0000000000000000")
    assert images.returncode == 1 and "is a picture of the Images API, which keeps nothing to collect" in images.stdout
    assert thread_emulator.stats.requests == 0 and get_store().history(None) == []


def test_cli_generate_count(cli: Callable[..., Ran], tmp_path: Path, thread_emulator: Emulator) -> None:
    """--count N: N pictures with seeds of their own (samples on a model without seeds), each saved
    and listed, progress on stderr; bad combinations refused before anything is sent; of several,
    what arrived is saved when one fails (exit code 1)."""
    for bad, reason in ((["--count", "2", "-o", "one.jpg"], "-o 'one.jpg' is invalid: names one file for several"),
                        (["--count", "2", "--seed", "4"], "give either --seed or --count, not both"),
                        (["--count", "0"], "--count 0 is invalid: must be from 1 to 16"),
                        (["-o", "one.png"], "-o 'one.png' is invalid: ends in .png but the picture is image/jpeg"),
                        (["--seed", "1,2", "-o", "one.jpg"], "-o 'one.jpg' is invalid: names one file for several"),
                        (["--seed", "1-40"], "40 seeds; at most 16 images at once")):
        refused = cli("generate", "a harbour", *bad)
        assert refused.returncode == 2
        assert reason in refused.stderr and refused.stderr.count("\n") == 1 and "%yandexart" not in refused.stderr
    assert thread_emulator.stats.requests == 0
    made = cli("generate", "a harbour", "--count", "3")
    assert made.returncode == 0
    lines = made.stdout.splitlines()
    seeds = {line.split("seed ")[1].split(" ")[0] for line in lines}
    assert len(lines) == 3 and len(seeds) == 3 and all(f"yandexart-{seed}.jpg" in made.stdout for seed in seeds)
    assert "3/3 done" in made.stderr
    assert cli("generate", "a harbour", "--seed", "", "-o", "e.jpg").returncode == 2  # an empty variable: no seed
    ranged = cli("generate", "--seed", "1,5", "a harbour", "--seed", "6", "-o", "h-{seed}.jpg")  # a list, again
    assert ranged.returncode == 0
    assert sorted(p.name for p in tmp_path.glob("h-*.jpg")) == ["h-1.jpg", "h-5.jpg", "h-6.jpg"]
    samples = cli("generate", "a harbour", "--count", "2", "--model", "aliceai-image-art-3.0", "-o", "s{n}")
    assert samples.returncode == 0 and "no seed" in samples.stdout
    assert sorted(p.name for p in tmp_path.glob("s*.jpg")) == ["s1.jpg", "s2.jpg"]
    thread_emulator.inject("fail", "start", message="the GPU melted")
    partly = cli("generate", "a harbour at dusk", "--count", "3", "-o", "d{n}.jpg")
    assert partly.returncode == 1
    assert sorted(p.name for p in tmp_path.glob("d*.jpg")) == ["d1.jpg", "d2.jpg"]
    assert partly.stdout.count("failed: ") == 1 and "the GPU melted" in partly.stdout
    listed = cli("history", "-n", "4")  # the seeds' widths differ (Alice's have none): columns stay aligned
    rows = listed.stdout.splitlines()
    starts = {re.search(r"\b(img-[0-9a-f]{16}|[a-z0-9]{20})\b", row).start() for row in rows}  # type: ignore[union-attr]
    assert len(rows) == 4 and len(starts) == 1, rows
    assert cli("history", "--search", "no such words").stdout == "no generation matches 'no such words'\n"


def test_cli_prune(cli: Callable[..., Ran]) -> None:
    assert cli("generate", "a pier", "--count", "2").returncode == 0
    for bad, reason in (([], "give --older-than DAYS and/or --max-size MB"),
                        (["--older-than", "-1"], "--older-than -1.0 is invalid: must not be negative")):
        refused = cli("prune", *bad)
        assert refused.returncode == 2 and reason in refused.stderr and get_store().count() == 2
    bad_unit = cli("prune", "--older-than", "3x")
    assert bad_unit.returncode == 2 and "invalid days value: '3x'" in bad_unit.stderr
    kept = cli("prune", "--older-than", "12h", "--max-size", "1GB")  # units: nothing is that old or that big
    assert kept.returncode == 0 and kept.stdout.startswith("Pruned 0 records,") and get_store().count() == 2
    done = cli("prune", "--older-than", "0")
    assert done.returncode == 0 and done.stdout.startswith("Pruned 2 records,") and get_store().count() == 0


def test_cli_batch_failures_give_exit_code_1(cli: Callable[..., Ran], tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps({"subject": s}) for s in
                                                   ("a calm sea", "a forbidden sea", "a bright sea")))
    run = cli("batch", "rows.jsonl", "--prompt", "{subject}", "--out", "out/{n}.jpg")
    assert run.returncode == 1, run.stderr
    assert "row 2:" in run.stdout and "terms of use" in run.stdout and "2 generated, 1 failed" in run.stdout
    invalid = cli("batch", "rows.jsonl", "--prompt", "{colour}", "--out", "x/{n}.jpg")
    assert invalid.returncode == 2 and "not a column" in invalid.stderr
    (tmp_path / "more.jsonl").write_text("\n".join(json.dumps({"subject": f"a forbidden sea, take {n}"})
                                                    for n in range(4)))
    refused = cli("batch", "more.jsonl", "--prompt", "{subject}", "--out", "more/{n}.jpg")
    assert refused.returncode == 1 and refused.stdout.startswith("rows 1, 2, 3 and 4: "), refused.stdout
    assert refused.stdout.count("terms of use") == 1  # four rows refused alike: one line


def test_failed_rows_alike_are_one_line_and_every_operation_is_named() -> None:
    from yart_jupyter.batches import row_lines
    from yart_jupyter.batches.plan import Row

    rows = [Row(1, {}, status="failed", error="Access denied. [request id a1]"),
            Row(2, {}, status="done"),
            Row(3, {}, status="failed", error="Access denied. [request id b2]"),
            Row(4, {}, status="failed", error="Still running. [operation op4, request id c3]"),
            Row(5, {}, status="failed", error="Still running. [operation op5, request id d4]"),
            Row(6, {}, status="invalid", error="seed -1 is invalid")]
    assert row_lines(rows) == ["rows 1 and 3: Access denied. [request id a1]",
                               "row 4: Still running. [operation op4, request id c3]",
                               "row 5: Still running. [operation op5, request id d4]"]
    assert row_lines(rows, ("invalid",)) == ["row 6: seed -1 is invalid"]


@pytest.mark.timeout(300)
@pytest.mark.long
def test_cli_batch_killed_midway_then_run_again(cli_env: dict[str, str], tmp_path: Path,
                                                thread_emulator: Emulator) -> None:
    """SIGKILL in the middle of a 200-row batch, then the same command: every row done once."""
    thread_emulator.config.duration = Duration("uniform", 0.5, 3.0)
    with open(tmp_path / "rows.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "n_legs"])
        writer.writerows([f"creature {i}", i % 7] for i in range(200))
    command = [sys.executable, "-m", "yart_jupyter.cli", "batch", "rows.csv",
               "--prompt", "{subject} with {n_legs} legs", "--out", "set/{n:05d}.jpg"]
    # a quota of 100 a minute: half the rows start at once, half wait queued when the kill comes
    slow = {**cli_env, "YANDEXART_GENERATIONS_PER_MINUTE": "100"}
    killed = subprocess.Popen(command, env=slow, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    meta = tmp_path / "set" / "metadata.jsonl"
    deadline = time.monotonic() + 120
    while (not meta.exists() or meta.read_text().count("\n") < 30) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    killed.stderr.close()  # type: ignore[union-attr]
    made_before = thread_emulator.stats.operations_created
    assert 30 <= meta.read_text().count("\n") < 200 and made_before < 200
    queued = [r for r in get_store(cli_env["YANDEXART_HOME"]).history(None) if r.status in ("queued", "submitting")]
    assert len(queued) == 200 - made_before  # the rows not started yet were recorded before the kill
    thread_emulator.config.duration = Duration("fixed", 0.1)
    again = subprocess.run(command, env=cli_env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
    assert thread_emulator.stats.operations_created == 200  # 0 generated twice
    images = sorted((tmp_path / "set").glob("*.jpg"))
    assert len(images) == 200  # 0 lost
    lines = [json.loads(line) for line in meta.read_text().splitlines()]
    assert sorted(line["row"] for line in lines) == list(range(1, 201))
    assert len({line["operation_id"] for line in lines}) == 200
    print(f"killed after {made_before} starts; the second run collected or started the rest, "
          f"{thread_emulator.stats.idempotent_replays} idempotent replays")


@pytest.mark.timeout(120)
def test_cli_ctrl_c_leaves_every_operation_resumable(cli_env: dict[str, str], tmp_path: Path,
                                                     thread_emulator: Emulator) -> None:
    thread_emulator.config.duration = Duration("fixed", 30.0)
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps({"subject": f"a cat {i}"}) for i in range(5)))
    command = [sys.executable, "-m", "yart_jupyter.cli", "batch", "rows.jsonl", "--prompt", "{subject}",
               "--out", "cats/{n}.jpg"]
    running = interruptible(command, cli_env, tmp_path)
    deadline = time.monotonic() + 60
    while thread_emulator.stats.operations_created < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    running.send_signal(signal.SIGINT)
    _, err = running.communicate(timeout=60)
    assert running.returncode == 130 and "yart resume --all" in err
    pending = yart(cli_env, tmp_path, "pending")
    assert pending.stdout.count("not collected") == 5
    thread_emulator.config.duration = Duration("fixed", 0.1)
    for op in list(thread_emulator.operations.values()):
        op.ready_at = time.time()
    resumed = yart(cli_env, tmp_path, "resume", "--all")
    assert resumed.returncode == 0 and resumed.stdout.count("seed ") == 5
    assert yart(cli_env, tmp_path, "pending").stdout.strip() == "nothing pending"
    again = yart(cli_env, tmp_path, *command[3:])
    assert again.returncode == 0 and "5 from the store" in again.stdout
    assert thread_emulator.stats.operations_created == 5


def test_cli_progress_on_a_terminal_and_in_a_log(cli_env: dict[str, str], tmp_path: Path) -> None:
    import pty

    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps({"subject": f"a dog {i}"}) for i in range(12)))
    args = ["batch", "rows.jsonl", "--prompt", "{subject}", "--out", "dogs/{n}.jpg"]
    logged = yart(cli_env, tmp_path, *args)
    assert logged.returncode == 0 and "\r" not in logged.stderr
    assert "[####################] YandexART · 12/12 done" in logged.stderr  # plain lines, the last at 100%
    main, secondary = pty.openpty()
    tty_run = subprocess.run([sys.executable, "-m", "yart_jupyter.cli", *args[:-1], "dogs2/{n}.jpg"], env=cli_env,
                             cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=secondary,
                             timeout=120, text=True)
    os.close(secondary)
    screen = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(main)
    assert tty_run.returncode == 0 and b"\r[" in screen and b"12 from the store" in screen


def test_cli_runs_the_emulator(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "yart_jupyter.cli", "emulator", "--port", str(port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert f"YandexART emulator on http://127.0.0.1:{port}" in server.stdout.readline()
    finally:
        server.terminate()
        server.wait(10)
        server.stdout.close()  # type: ignore[union-attr]


@pytest.mark.timeout(300)
@pytest.mark.long
def test_batch_in_a_real_kernel(kernel_workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a real kernel (nbclient): the progress line is replaced by the results table; a bad table is
    one line with its row numbers; the output folder is a dataset; exported HTML keeps the table."""
    from yart_jupyter.notebook.runner import write_outputs

    monkeypatch.setenv("YANDEXART_EMULATOR_DURATION", "0.3")
    cells = [
        "import yart_jupyter\nrows = [{'subject': s} for s in ('a fox', 'an owl', 'a heron', 'a hare')]",
        "result = await yart_jupyter.batch(rows, prompt='{subject}, ink', out='ds/{n:03d}.jpg')",
        "result.summary(), result.left, len(open('ds/metadata.jsonl').read().splitlines())",
        "yart_jupyter.batch([{'subject': 'x' * 501}, {'subject': 'ok'}], prompt='{subject}')",
        "again = await yart_jupyter.batch(rows[:2], prompt='{subject}, oil', out='oil/{n:03d}.jpg')\nagain",
        "again",
    ]
    executed = run_cells(cells, kernel_workdir / "batch.ipynb", timeout=120, allow_errors=True)
    _, ran, checked, bad, shown_once, later = executed.cells
    for cell in (shown_once, later):  # the value as the cell's last line: one table, in its own cell too
        tables = "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs).count("yart-batch-result")
        assert tables == 1, cell.outputs
    table = "".join(o.get("data", {}).get("text/html", "") for o in ran.outputs)
    assert "yart-batch-result" in table and "4 rows: 4 generated" in table
    assert "(\'4 rows: 4 generated in" in checked.outputs[0]["data"]["text/plain"]
    assert checked.outputs[0]["data"]["text/plain"].endswith("0, 4)")
    error = next(o for o in bad.outputs if o.output_type == "error")
    assert error.ename == "BatchInputError" and len(error.traceback) == 1
    assert "1 of 2 rows are invalid (row 1: prompt" in error.evalue
    _, html_file = write_outputs(executed, kernel_workdir / "out", "batch")
    assert "yart-batch-result" in html_file.read_text()
