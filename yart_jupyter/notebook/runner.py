"""Run a notebook headless in a real kernel, keeping late display updates from background work.

Stock nbclient drops output messages whose parent is not the cell now executing, so a
``--background`` cell would keep its "pending" status line; this client applies such late
``update_display_data`` messages to the output they belong to.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete
from nbclient.util import ensure_async


class LateUpdateClient(NotebookClient):
    """A NotebookClient that also applies display updates sent after their cell finished."""

    async def _async_poll_output_msg(self, parent_msg_id: str, cell: Any, cell_index: int) -> None:
        assert self.kc is not None
        while True:
            msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=None))
            if msg["parent_header"].get("msg_id") == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    return
            elif msg["header"]["msg_type"] == "update_display_data":
                display_id = (msg["content"].get("transient") or {}).get("display_id")
                if display_id:
                    self._update_display_id(display_id, msg)


def run_notebook(
    source: str | os.PathLike[str],
    *,
    workdir: str | os.PathLike[str] | None = None,
    timeout: int = 300,
    allow_errors: bool = False,
) -> Any:
    """Execute ``source`` in a fresh ``python3`` kernel and return the executed notebook."""
    from traitlets.config import Config

    notebook = nbformat.read(os.fspath(source), as_version=4)
    # Local sockets, not TCP: nothing else on the machine can reach the kernel, and it has no reason to
    # warn that TCP is unencrypted (a newcomer's first output should be what the demo made).
    sockets = tempfile.mkdtemp(prefix="yart-kernel-")  # absolute: the kernel runs in another folder
    local = Config(KernelManager={"transport": "ipc", "ip": os.path.join(sockets, "k")})
    client = LateUpdateClient(
        notebook, config=local, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
        resources={"metadata": {"path": os.fspath(workdir or Path(source).parent)}},
    )
    try:
        client.execute()
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    return notebook


def write_outputs(notebook: Any, out_dir: str | os.PathLike[str], stem: str) -> tuple[Path, Path]:
    """Save the executed notebook and an HTML copy with the images inline."""
    from nbconvert import HTMLExporter

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ipynb = folder / f"{stem}.ipynb"
    nbformat.write(notebook, os.fspath(ipynb))
    body, _ = HTMLExporter().from_notebook_node(notebook)
    html = folder / f"{stem}.html"
    html.write_text(body, encoding="utf-8")
    return ipynb, html
