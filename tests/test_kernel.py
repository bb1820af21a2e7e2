"""In a real kernel: the quickstart notebook (nbclient), a background cell's late update, interrupts."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from .helpers import execute, start_kernel

ROOT = Path(__file__).resolve().parent.parent


def kernel_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YC_", "YANDEXART_"))}
    env.update(YANDEXART_BASE_URL="emulator", YANDEXART_HOME=os.environ["YANDEXART_HOME"], **extra)
    return env


@pytest.mark.timeout(300)
@pytest.mark.long
def test_quickstart_runs_in_a_real_kernel(kernel_workdir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from yart_jupyter.notebook.runner import run_notebook

    notebook = run_notebook(ROOT / "notebooks" / "quickstart.ipynb", workdir=kernel_workdir, timeout=120)
    printed = capfd.readouterr()
    assert "without encryption" not in printed.err + printed.out  # make demo's first output is what it made
    code = [c for c in notebook.cells if c.cell_type == "code"]
    images_per_cell = {
        c.source.splitlines()[0]: sum(o.get("data", {}).get("text/html", "").count("<img ") for o in c.outputs)
        for c in code
    }
    assert images_per_cell["%%yandexart --seed 1863 --aspect 2:1"] == 1
    assert images_per_cell["%%yandexart --seed 1-4 --aspect square"] == 4
    assert images_per_cell["%%yandexart --model aliceai-image-art-3.0 --aspect 2:1"] == 1
    assert images_per_cell["%%yandexart --seed 21 22 --out quickstart-images/tree-{seed}.jpg --var trees"] == 2
    # The background cell's status line was replaced by its image after the cell had finished.
    assert images_per_cell["%%yandexart --background --seed 99 --aspect banner"] == 1
    assert images_per_cell["op = img.operation_id"] == 1
    assert sum(images_per_cell.values()) >= 14 + 12 + 2
    by_first_line = {c.source.splitlines()[0]: c for c in code}
    alice = "".join(o.get("data", {}).get("text/html", "") for o in by_first_line[
        "%%yandexart --model aliceai-image-art-3.0 --aspect 2:1"].outputs)
    assert "no seed" in alice and "1344×768" in alice and "seed None" not in alice  # 2:1 snaps to 7:4
    status = "".join(o.get("data", {}).get("text/plain", "") for o in by_first_line["%yandexart status"].outputs)
    assert "from the embedded emulator" in status and "Ready: nothing stands in the way" in status
    models = "".join(o.get("data", {}).get("text/plain", "") for o in by_first_line["%yandexart models"].outputs)
    assert "aliceai-image-art-3.0" in models and "reported denied since 2026-09" in models
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    assert (kernel_workdir / "quickstart-images" / "tree-21.jpg").exists()
    # the sweep: its plan, then its labelled 3 × 4 grid (kept in the saved notebook), the contact sheet, compare
    by_line = {c.source.splitlines()[0]: c for c in code}
    sweep = '%%yandexart --seed 1-4 --vary style="watercolour|oil painting|pixel art"'
    plan = "".join(o.get("data", {}).get("text/plain", "") for o in by_line[sweep + " --dry-run"].outputs)
    assert "12 generations (style 3 × seed 4)" in plan and "Nothing was sent" in plan
    grid = by_line[sweep + " --grid-out quickstart-images/fox-grid.png --var exp"]
    page = "".join(o.get("data", {}).get("text/html", "") for o in grid.outputs)
    assert images_per_cell[grid.source.splitlines()[0]] == 12 and "yart-grid" in page
    assert all(label in page for label in ("watercolour", "oil painting", "pixel art", "style \\ seed"))
    assert (kernel_workdir / "quickstart-images" / "fox-grid.png").stat().st_size > 50_000
    compared = by_line['first, second = exp["watercolour", 1].operation_id, exp["pixel art", 2].operation_id']
    page = "".join(o.get("data", {}).get("text/html", "") for o in compared.outputs)
    assert page.count("<img ") == 2 and "yart-changed" in page and "<ins" in page


@pytest.fixture
def kernel() -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    km, kc = start_kernel(kernel_env(YANDEXART_EMULATOR_DURATION="30"))
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.timeout(180)
def test_make_demo_runs_twice(kernel_workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second ``make demo`` starts from a clean pictures folder: files are never overwritten, so the
    quickstart's --grid-out would otherwise stop the second run (found by running it twice)."""
    import nbformat

    from yart_jupyter.notebook import demo

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "import os\nfrom IPython.display import HTML\nos.makedirs('mini-images', exist_ok=True)\n"
        "open('mini-images/grid.png', 'x').close()  # 'x': fails when the file exists\n"
        "HTML('<img src=\"data:,\">')")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = kernel_workdir / "mini.ipynb"
    nbformat.write(notebook, os.fspath(source))
    out = kernel_workdir / "out"
    for _ in range(2):
        demo.main([str(source), "--out", str(out)])
    assert (out / "mini-images" / "grid.png").exists() and (out / "mini.html").exists()


@pytest.mark.timeout(60)
def test_the_kernel_packs_its_messages_with_orjson(kernel: tuple[KernelManager, BlockingKernelClient]) -> None:
    """A finished view is a message of up to a megabyte, packed on the kernel's loop: with orjson
    installed (a dependency for this) jupyter_client packs it several times faster."""
    _, kc = kernel
    code = "import ipykernel.kernelapp as k\nprint(k.IPKernelApp.instance().session.packer)"
    content, messages = execute(kc, code)
    printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert content["status"] == "ok" and printed.strip() == "orjson"


@pytest.mark.timeout(120)
def test_interrupt_ends_the_cell_and_reports_ids(kernel: tuple[KernelManager, BlockingKernelClient]) -> None:
    km, kc = kernel
    content, _ = execute(kc, "%load_ext yart_jupyter")
    assert content["status"] == "ok"
    # stop_on_error=False: the interrupted cell's error reply must not make the kernel abort the next
    # request (ipykernel aborts requests that arrive while it flushes after an error; a CI run on 3.13
    # sent the count below within that window and got "aborted")
    msg_id = kc.execute("%%yandexart --seed 1 2\na slow generation", stop_on_error=False)
    deadline = time.monotonic() + 30
    seen_ops = False
    while not seen_ops and time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=30)
        text = msg["content"].get("data", {}).get("text/plain", "")
        seen_ops = msg["parent_header"].get("msg_id") == msg_id and " op " in text
    assert seen_ops, "the status line never showed an operation id"
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=20)  # the generations take 30 s: an error reply means it did not wait
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "GenerationInterrupted", reply["content"]
    text = " ".join(reply["content"]["traceback"])
    assert "still running on the server" in text and "resume" in text
    assert len(reply["content"]["traceback"]) == 1  # one line, no traceback wall
    count = "import asyncio\nprint(sum('generate' in repr(t.get_coro()) for t in asyncio.all_tasks()))"
    content, messages = execute(kc, count)
    printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert content["status"] == "ok" and printed.strip() == "0", (content, messages)


@pytest.mark.timeout(180)
@pytest.mark.long
def test_a_kernel_killed_mid_request_on_the_images_api_loses_nothing_and_pays_once() -> None:
    """SIGKILL while a synchronous Images API request is out: the record says "sent, answer lost";
    resume --all leaves it alone; --resend-lost sends it once more and collects the picture."""
    from yart_jupyter.store import get_store

    cell = "%%yandexart --model aliceai-image-art-3.0\na slow heron"
    km, kc = start_kernel(kernel_env(YANDEXART_EMULATOR_IMAGES_DURATION="60"))
    try:
        assert execute(kc, "%load_ext yart_jupyter")[0]["status"] == "ok"
        kc.execute(cell)
        store = get_store(os.environ["YANDEXART_HOME"])
        deadline = time.monotonic() + 60
        while not any(r.status == "submitting" for r in store.history(None)) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the request itself is on the wire (its 60 s are far from over)
        km.signal_kernel(signal.SIGKILL)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    [record] = store.history(None)
    assert record.answer_lost and record.api == "images"

    km, kc = start_kernel(kernel_env(YANDEXART_EMULATOR_IMAGES_DURATION="0.2"))
    try:
        assert execute(kc, "%load_ext yart_jupyter")[0]["status"] == "ok"

        def shown(code: str) -> str:
            content, messages = execute(kc, code)
            assert content["status"] == "ok", content
            return " ".join(m["content"].get("data", {}).get("text/plain", "") + m["content"].get("text", "")
                            for m in messages)

        listed = shown("%yandexart pending")  # minutes old: its kernel might have been receiving it still
        assert "no answer recorded" in listed and "if that one stopped, the answer was lost" in listed
        assert "left alone" in shown("%yandexart resume --all")
        assert get_store(os.environ["YANDEXART_HOME"]).get(record.operation_id).status == "submitting"
        shown("%yandexart resume --all --resend-lost")
        assert "Nothing pending" in shown("%yandexart pending")
        [done] = store.history(None)
        assert done.status == "done" and done.seed is None
        billed = shown("from yart_jupyter.emulator import embedded; print(embedded().stats.images_generated)")
        assert billed.strip() == "1"  # this kernel sent it once, on request
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
