"""Helpers shared by the test files: running a magic cell, a kernel request, a form click."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from yart_jupyter.core.provenance import PNG_SIGNATURE

if TYPE_CHECKING:
    from jupyter_client.blocking.client import BlockingKernelClient
    from jupyter_client.manager import KernelManager

    from yart_jupyter.notebook.cards import ImageCard
    from yart_jupyter.notebook.widget import YandexArtForm


def start_kernel(env: dict[str, str]) -> tuple[KernelManager, BlockingKernelClient]:
    """A python3 kernel whose sockets are files of its own (ZeroMQ's IPC transport, removed when it
    shuts down), not TCP ports: the suites of several Pythons start kernels at once, and a port
    chosen free by one was bound by another before the kernel could (a CI run: "Address already in
    use")."""
    from jupyter_client.manager import KernelManager

    sockets = os.path.join(tempfile.gettempdir(), f"yart-kernel-{uuid.uuid4().hex[:12]}")
    km = KernelManager(kernel_name="python3", transport="ipc", ip=sockets)
    km.start_kernel(env=env)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
    except RuntimeError:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        raise
    return km, kc


def interruptible(command: Sequence[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """A process that a test stops with Ctrl-C (SIGINT). A suite started as a background job (`make
    test &` in a script) inherits SIGINT ignored, and so would the process; it gets the default
    disposition a terminal gives it (a handler is reset by exec)."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, inherited)


def run_cell(shell: InteractiveShell, source: str) -> tuple[Any, Any]:
    """Run a cell; return (the run result, the captured output)."""
    with capture_output() as captured:
        result = shell.run_cell(source, store_history=True)
    return result, captured


def html_outputs(captured: Any) -> str:
    """Every text/html output of a captured cell, joined."""
    return "".join(o.data.get("text/html", "") for o in captured.outputs)


def execute(kc: BlockingKernelClient, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run code in a kernel; return the reply content and the iopub messages of that request."""
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    return reply["content"], drain(kc, msg_id)


def drain(kc: BlockingKernelClient, msg_id: str, wait: float = 0.5, timeout: float = 60) -> list[dict[str, Any]]:
    """The iopub messages of one request: all of them up to its ``idle`` status (iopub is another socket
    than the reply's and can lag it by more than ``wait`` on a loaded machine), then any that follow
    until the kernel is quiet for ``wait`` seconds (a background cell's late updates)."""
    messages = []
    idle = False
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=wait if idle else max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return messages
        if msg["parent_header"].get("msg_id") == msg_id:
            messages.append(msg)
            idle = idle or (msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle")


async def click_and_wait(panel: YandexArtForm) -> list[ImageCard]:
    """Click the form's Generate and wait for its job; return the newest gallery row's cards."""
    panel.generate_button.click()
    job = panel.jobs[-1]
    await asyncio.gather(job.task, return_exceptions=True)
    return list(panel.gallery.children[0].images.children)


def picture_data(data: bytes) -> bytes:
    """The compressed picture alone (JPEG scan data on, or the PNG's IDAT payloads), to compare two files."""
    if data[:8] == PNG_SIGNATURE:
        parts, at = [], 8
        while at + 12 <= len(data):
            (length,) = struct.unpack(">I", data[at:at + 4])
            if data[at + 4:at + 8] == b"IDAT":
                parts.append(data[at + 8:at + 8 + length])
            at += 12 + length
        return b"".join(parts)
    start = data.find(b"\xff\xda")
    if data[:2] != b"\xff\xd8" or start < 0:
        raise ValueError("it is not a JPEG or PNG image")
    return data[start:]


def run_cells(
    cells: Sequence[str], path: str | os.PathLike[str], *, timeout: int = 300, allow_errors: bool = False,
) -> Any:
    """Write code cells as a notebook at ``path`` and execute it there, in a fresh ``python3`` kernel."""
    import nbformat

    from yart_jupyter.notebook.runner import run_notebook

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, os.fspath(path))
    return run_notebook(path, workdir=Path(path).parent, timeout=timeout, allow_errors=allow_errors)


def one_line_error(result: Any, captured: Any) -> str:
    """The cell failed with one readable line, and printed no traceback."""
    assert not result.success
    assert "Traceback" not in captured.stdout + captured.stderr
    lines = [line for line in (captured.stdout + captured.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]
