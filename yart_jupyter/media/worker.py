"""Pictures re-encoded in a helper process at low priority, so the kernel's loop keeps its CPU.

Previews cost 10-40 ms of CPU each. Encoded in the kernel's own threads they compete
with its event loop for the GIL and, on a small machine, for the cores: with fifty pictures
arriving the loop stalls for tens of milliseconds. One helper process (``python -m
yart_jupyter.media.worker``, niced) does them instead; a thread waiting for it holds no GIL. It
is started at the first picture, serves one request at a time, and ends with the kernel (it
reads its requests from a pipe and exits at end of file). If it cannot start or dies, the work is
done here, as before (logged once).

The protocol is a JSON line and the picture's bytes each way; no user code is imported there.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
from typing import IO, Any

from ..core.redact import get_logger

log = get_logger("yart_jupyter.media.worker")


class PictureWorker:
    """The parent's side: one helper process, one request at a time, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._broken = False

    def preview(self, data: bytes, longest: int) -> tuple[bytes, str, tuple[int, int]] | None:
        """:func:`.image.preview` of ``data``, made by the helper; None when it is not available."""
        with self._lock:
            if self._broken:
                return None
            try:
                process = self._started()
                assert process.stdin is not None and process.stdout is not None
                head = json.dumps({"longest": longest, "size": len(data)}).encode() + b"\n"
                process.stdin.write(head + data)
                process.stdin.flush()
                return _read_answer(process.stdout)
            except PictureError:
                return None  # a picture the encoder cannot read: done here again, which raises the error
            except (OSError, ValueError, EOFError) as exc:
                self._broken = True
                log.warning("the picture helper process is not available (%s); pictures are encoded "
                            "in the kernel's process", exc)
                self.close()
                return None

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is not None:
            self.close()  # it ended (killed?): a new one
        if self._process is None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "yart_jupyter.media.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
        return self._process

    def close(self) -> None:
        """End the helper (it also ends by itself when this process goes)."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


class PictureError(Exception):
    """The helper could not encode this picture (the same work here raises the real error)."""


def _read_answer(stream: IO[bytes]) -> tuple[bytes, str, tuple[int, int]]:
    line = stream.readline()
    if not line:
        raise EOFError("the helper ended")
    answer = json.loads(line)
    data = stream.read(answer["size"]) if answer["size"] else b""
    if len(data) != answer["size"]:
        raise EOFError("the helper's answer was cut off")
    if "error" in answer:
        raise PictureError(answer["error"])
    return data, answer["mime"], (answer["width"], answer["height"])


WORKER = PictureWorker()
atexit.register(WORKER.close)


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The helper's side: answer each request until the pipe closes."""
    from .pixels import preview

    while True:
        line = requests.readline()
        if not line:
            return
        request = json.loads(line)
        data = requests.read(request["size"])
        answer: dict[str, Any] = {}
        try:
            out, mime, (width, height) = preview(data, request["longest"])
            answer.update(mime=mime, width=width, height=height)
        except Exception as exc:  # a picture the encoder cannot read: said to the parent, which raises it
            answer["error"] = f"{type(exc).__name__}: {exc}"
            out = b""
        answer["size"] = len(out)
        answers.write(json.dumps(answer).encode() + b"\n" + out)
        answers.flush()


if __name__ == "__main__":
    if hasattr(os, "nice"):
        os.nice(19)  # the kernel's loop comes first
    serve(sys.stdin.buffer, sys.stdout.buffer)
