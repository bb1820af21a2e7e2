"""Live outputs in a kernel: a status line updated in place, a cell's view of a batch, full-size buttons,
a form's static copy."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

from ..core.errors import failure_lines
from ..core.settings import current
from ..core.status import BatchStatus
from ..core.steps import steps_on_loop
from .html import FAILED, Bundle, message_bundle
from .pictures import (
    Picture,
    hide_static_copy,
    images_output_soon,
    prepare_figure,
    static_copy_bundle,
    static_copy_steps,
)
from .progress import progress_bundle


class StatusLine:
    """A batch's progress shown once and updated in place (throttled); works from background tasks."""

    def __init__(self, status: BatchStatus, *, min_interval: float = 0.25) -> None:
        from IPython.display import display

        self._handle: Any = display(progress_bundle(status), raw=True, display_id=True)  # type: ignore[no-untyped-call]
        self._last = 0.0
        self._min_interval = min_interval

    def update(self, status: BatchStatus, *, force: bool = False) -> None:
        """Show the new progress (skipped when the last update was very recent, unless forced)."""
        now = time.monotonic()
        if not force and now - self._last < self._min_interval:
            return
        self._last = now
        self._show(progress_bundle(status))

    def replace(self, bundle: Bundle, metadata: Bundle | None = None) -> None:
        """Replace the status line with a final bundle (the result, or an error)."""
        self._show(bundle, metadata)

    def _show(self, bundle: Bundle, metadata: Bundle | None = None) -> None:
        if self._handle is not None:
            self._handle.update(bundle, raw=True, metadata=metadata or {})


class CellView:
    """A batch shown in a notebook cell: a status line updated in place, then the pictures.

    ``errors_in_place``: a background job's errors replace its status line (its cell has ended,
    so there is nowhere else to print them); a waiting cell's errors are raised instead.
    """

    def __init__(self, status: BatchStatus, *, errors_in_place: bool, inline: str = "preview") -> None:
        self.line = StatusLine(status)
        self.count = status.total
        self.errors_in_place = errors_in_place
        self.inline = inline

    def progress(self, status: BatchStatus) -> None:
        self.line.update(status)

    def prepare_finish(self, images: Sequence[Any]) -> list[str]:
        """Nothing to write."""
        return []

    def prepare_picture(self, image: Picture) -> None:
        """Off the loop: the preview this picture will be shown with when every item arrives."""
        prepare_figure(image, self.count, self.inline)

    def item(self, event: Any) -> None:
        """A plain cell shows the batch as a whole: its status line."""

    async def finished(self, images: Sequence[Picture], failures: Sequence[Exception], notes: Sequence[str]) -> None:
        lines = [*notes, *(f"{FAILED} {line}" for line in failure_lines(failures))]
        if images:
            self.line.replace(*await images_output_soon(images, lines, self.inline))
            if self.inline != "full":
                await show_full_size(images)
        elif self.errors_in_place and lines:
            self.line.replace(message_bundle("; ".join(lines), "error"))
        else:
            self.line.replace({"text/plain": ""})

    def stopped(self, status: BatchStatus) -> None:
        text = status.interrupted_line()
        self.line.replace(message_bundle(text, "warning") if self.errors_in_place else {"text/plain": ""})


async def show_full_size(images: Sequence[Picture]) -> None:
    """Below previews, in a live kernel: one click shows a picture at full size (a plain shell has
    no widgets, and needs none: ``img.image_bytes`` is the full picture). The buttons are made a
    few per turn of the event loop."""
    from IPython import get_ipython
    from IPython.display import display

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return
    from .fullsize import full_size_soon

    display(await full_size_soon(images))  # type: ignore[no-untyped-call]


class StaticCopy:
    """A form's pictures kept as plain output under it (previews and captions): what a notebook
    reopened without the kernel still shows, since widget views vanish. The live form carries
    :meth:`hide_rule`, so the copy shows only where the form no longer does."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex[:12]
        #: Every picture the form made, newest first.
        self.pictures: list[Picture] = []
        self.handle: Any = None

    def hide_rule(self) -> str:
        """The style rule the live form carries."""
        return hide_static_copy(self.id)

    def show(self) -> None:
        """Display the copy's place (under the form), to be updated as pictures come."""
        from IPython.display import display

        self.handle = display(static_copy_bundle(self.pictures, self.id, current().inline),  # type: ignore[no-untyped-call]
                              raw=True, display_id=True)

    async def add(self, images: Sequence[Picture]) -> None:
        """New pictures: update the copy with every picture so far, built a figure per turn of the
        loop (jobs that end together update it in the order they ended). A job cancelled meanwhile
        still leaves its pictures in the copy."""
        self.pictures[:0] = list(images)
        if self.handle is not None:
            shown, inline = list(self.pictures), current().inline
            try:
                copy = await steps_on_loop(static_copy_steps(shown, self.id, inline))
            except asyncio.CancelledError:
                self.handle.update(static_copy_bundle(shown, self.id, inline), raw=True)
                raise
            self.handle.update(copy, raw=True)
