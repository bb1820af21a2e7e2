"""The ``yart`` command's progress line: rewritten in place on a terminal, plain lines in a file or a pipe."""

from __future__ import annotations

import time
from typing import TextIO

from ..core.status import BatchStatus


class Progress:
    """A batch's progress: one line rewritten in place on a terminal, plain lines (every 10%) otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last = 0.0
        self._shown = -1
        self._status: BatchStatus | None = None

    def __call__(self, status: BatchStatus) -> None:
        from ..present.progress import progress_text_bar

        self._status = status
        now = time.monotonic()
        if self.tty:
            if now - self._last >= 0.25:
                self._last = now
                self.stream.write(f"\r{progress_text_bar(status)} {status.text()}\033[K")
                self.stream.flush()
            return
        step = (10 * (status.done + status.failed)) // max(1, status.total)
        if step > self._shown or now - self._last >= 30:
            self._shown, self._last = step, now
            self.stream.write(f"{progress_text_bar(status)} {status.text()}\n")
            self.stream.flush()

    def end(self) -> None:
        """Show the final state (a throttled update may have skipped it), and end the line."""
        from ..present.progress import progress_text_bar

        if self._status is None:
            return
        line = f"{progress_text_bar(self._status)} {self._status.text()}"
        if self.tty:
            self.stream.write(f"\r{line}\033[K\n")
        elif self._shown < 10:  # the last plain line was not the finished one
            self.stream.write(f"{line}\n")
        self.stream.flush()
