"""Helpers shared by the test files: running a magic cell, a kernel request, a form click."""

from __future__ import annotations

import asyncio
import queue
from typing import TYPE_CHECKING, Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

if TYPE_CHECKING:
    from jupyter_client.blocking.client import BlockingKernelClient

    from yart_jupyter.notebook.widget import ImageCard, YandexArtForm


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


def drain(kc: BlockingKernelClient, msg_id: str, wait: float = 0.5) -> list[dict[str, Any]]:
    """The iopub messages of one request, until the kernel is quiet for ``wait`` seconds."""
    messages = []
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=wait)
        except queue.Empty:
            return messages
        if msg["parent_header"].get("msg_id") == msg_id:
            messages.append(msg)


async def click_and_wait(panel: YandexArtForm) -> list[ImageCard]:
    """Click the form's Generate and wait for its job; return the newest gallery row's cards."""
    panel.generate_button.click()
    job = panel.jobs[-1]
    await asyncio.gather(job.task, return_exceptions=True)
    return list(panel.gallery.children[0].images.children)
