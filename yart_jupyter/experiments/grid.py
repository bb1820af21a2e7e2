"""How an experiment looks in a notebook: a labelled grid that fills in as pictures arrive, and the plan.

Rows and columns are labelled with the axis values (a third axis makes one grid per value, one
under another, so it reads the same in exported HTML and on GitHub as in JupyterLab); the fixed
part of the prompt is the title, and each picture says only what differs. Colours come from the
theme's variables with neutral fallbacks, so light and dark themes both read well.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import failure_lines
from ..core.status import BatchStatus
from ..core.steps import Steps, steps_now, steps_on_loop
from ..present.html import FAILED, MUTED, Bundle
from ..present.live import StatusLine, show_full_size
from ..present.progress import progress_bundle

if TYPE_CHECKING:
    from ..engine import ItemEvent


class GridCell(Protocol):
    """What a cell of the grid shows: an experiment's Slot, as far as display is concerned."""

    @property
    def key(self) -> tuple[Any, ...]: ...

    @property
    def request(self) -> Any: ...

    @property
    def state(self) -> str: ...

    @property
    def operation_id(self) -> str | None: ...

    @property
    def image(self) -> Any: ...

    @property
    def error(self) -> Any: ...

    @property
    def note(self) -> str | None: ...


class GridSource(Protocol):
    """What the grid shows: an Experiment, as far as display is concerned (display imports no
    experiment, so the experiment may show itself through this module)."""

    @property
    def title(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def axes(self) -> Sequence[Any]: ...

    @property
    def slots(self) -> Sequence[GridCell]: ...

    @property
    def size(self) -> int: ...

    def shape(self) -> str: ...

    def labels(self, slot: Any) -> dict[str, str]: ...

    def __iter__(self) -> Iterator[Any]: ...

    def update(self, event: ItemEvent) -> None: ...

    def save_grid(self, path: str) -> Path: ...

_BORDER = "var(--jp-border-color2, rgba(128,128,128,.35))"
_FILL = "var(--jp-layout-color2, rgba(128,128,128,.12))"
_LABEL = "font:12px/1.3 var(--jp-ui-font-family, sans-serif);padding:4px 6px;text-align:center"
_STATE_TEXT = {"queued": "queued", "running": "generating", "missing": "no picture"}


def cell_width(columns: int) -> int:
    """CSS pixels per picture: large for a few columns, never below 120."""
    return max(120, min(340, 960 // max(1, columns)))


def slot_longest(size: tuple[int, int] | None, width: int, scale: int = 2) -> int:
    """The longest side a grid cell's preview is encoded at: ``scale`` times the ``width`` it is shown
    at (twice, for high-density screens)."""
    return scale * max(width, width * size[1] // size[0]) if size else scale * width


def layout(experiment: GridSource) -> tuple[list[tuple[str | None, list[Sequence[GridCell]]]], list[str], list[str]]:
    """(sections, row labels, column labels): each section is a title (the third axis' value) and rows of slots."""
    axes = experiment.axes
    cols = axes[-1]
    rows = axes[-2] if len(axes) >= 2 else None
    pages = axes[-3] if len(axes) >= 3 else None
    n_cols, n_rows = len(cols.values), len(rows.values) if rows else 1
    per_page = n_cols * n_rows
    sections = []
    for p in range(len(pages.values) if pages else 1):
        chunk = experiment.slots[p * per_page:(p + 1) * per_page]
        title = f"{pages.name} = {pages.labels[p]}" if pages else None
        sections.append((title, [chunk[r * n_cols:(r + 1) * n_cols] for r in range(n_rows)]))
    return sections, list(rows.labels) if rows else [], list(cols.labels)


def _ratio(slot: GridCell) -> str:
    if slot.image is not None and slot.image.size:
        w, h = slot.image.size
        return f"{w}/{h}"
    aspect = slot.request.aspect if slot.request is not None else None
    return f"{aspect.width}/{aspect.height}" if aspect is not None else "1/1"


def _slot_html(slot: GridCell, width: int, inline: str, scale: int) -> str:
    image = slot.image
    if image is not None and inline != "none":
        data, mime = image.image_bytes, image.mime_type
        size = image.size
        if inline == "preview":
            data, mime, _ = image.preview(slot_longest(size, width, scale))
        note = "from the store" if image.cached else f"{image.duration:.1f} s" if image.duration is not None else ""
        caption = " · ".join(p for p in (note, f"op {image.operation_id}") if p)
        recipe = html.escape(json.dumps(image.recipe(), ensure_ascii=False), quote=True)
        return (f'<figure data-yart-recipe="{recipe}" style="margin:0">'
                f'<img src="data:{mime};base64,{base64.b64encode(data).decode("ascii")}" alt="'
                f'{html.escape(image.prompt[:100], quote=True)}" style="width:{width}px;height:auto;display:block;'
                f'border-radius:3px"><figcaption style="font:10px/1.3 monospace;opacity:.7;margin-top:2px;'
                f'overflow-wrap:anywhere">{html.escape(caption)}</figcaption></figure>')
    if slot.state == "failed":
        text, style = f"{FAILED} {slot.error.message if slot.error else slot.note or 'failed'}", \
            "color:var(--jp-error-color1, #d32f2f)"
    else:
        text = _STATE_TEXT.get(slot.state, slot.state)
        if slot.note:
            text += f" · {slot.note}"
        if slot.operation_id:
            text += f" · op {slot.operation_id}"
        if image is not None:
            text = f"not embedded (inline = none) · op {image.operation_id}"
        style = "opacity:.75"
    return (f'<div class="yart-slot yart-slot-{slot.state}" style="width:{width}px;aspect-ratio:{_ratio(slot)};'
            f'display:flex;align-items:center;justify-content:center;text-align:center;padding:6px;'
            f'box-sizing:border-box;border:1px dashed {_BORDER};border-radius:3px;background:{_FILL};'
            f'font:11px/1.35 monospace;overflow-wrap:anywhere;{style}">{html.escape(text[:200])}</div>')


def fixed_parameters(experiment: GridSource) -> list[str]:
    """What all cells share and no axis names: aspect, seed, model (said once, above the grid)."""
    names = {axis.name for axis in experiment.axes}
    requests = [slot.request for slot in experiment.slots if slot.request is not None]
    parts = []
    aspects = {str(r.aspect) for r in requests}
    if len(aspects) == 1:
        parts.append(f"aspect {aspects.pop()}")
    seeds = {r.seed for r in requests}
    if "seed" not in names and len(seeds) == 1 and None not in seeds:
        parts.append(f"seed {seeds.pop()}")
    models = {r.model_uri for r in requests}
    if len(models) == 1:
        parts.append(models.pop())
    return parts


def grid_bundle(
    experiment: GridSource, *, inline: str = "preview", status: BatchStatus | None = None, notes: Sequence[str] = (),
    scale: int = 2,
) -> Bundle:
    """The experiment as HTML tables (one per value of a third axis) and as plain text; previews at
    ``scale`` times the size they are shown at."""
    return steps_now(grid_bundle_steps(experiment, inline=inline, status=status, notes=notes, scale=scale))


def grid_bundle_steps(
    experiment: GridSource, *, inline: str = "preview", status: BatchStatus | None = None, notes: Sequence[str] = (),
    scale: int = 2,
) -> Steps[Bundle]:
    """:func:`grid_bundle`, a row of pictures per step."""
    sections, row_labels, col_labels = layout(experiment)
    width = cell_width(len(col_labels))
    axes = experiment.axes
    corner = (f"{axes[-2].name} \\ {axes[-1].name}" if len(axes) >= 2 else axes[-1].name)
    head = "".join(f'<th style="{_LABEL};font-weight:600">{html.escape(label)}</th>' for label in col_labels)
    tables = []
    for title, rows in sections:
        body = []
        for r, row in enumerate(rows):
            label = ""
            if row_labels:
                wrap = "white-space:nowrap" if len(row_labels[r]) <= 24 else "max-width:180px;overflow-wrap:break-word"
                label = (f'<th style="{_LABEL};font-weight:600;text-align:right;{wrap}">'
                         f"{html.escape(row_labels[r])}</th>")
            cells = "".join(f'<td style="padding:3px;vertical-align:top">{_slot_html(s, width, inline, scale)}</td>'
                            for s in row)
            body.append(f"<tr>{label}{cells}</tr>")
            yield
        caption = (f'<div style="font:600 13px var(--jp-ui-font-family, sans-serif);margin:10px 0 2px">'
                   f"{html.escape(title)}</div>") if title else ""
        corner_cell = f'<th style="{_LABEL};{MUTED};font-weight:400">{html.escape(corner)}</th>' if row_labels else ""
        tables.append(f'{caption}<table class="yart-grid-table" style="border-collapse:collapse;margin:0">'
                      f'<tr>{corner_cell}{head}</tr>{"".join(body)}</table>')
    fixed = " · ".join([experiment.shape(), *fixed_parameters(experiment), experiment.id])
    top = progress_bundle(status)["text/html"] if status is not None else ""
    note_html = "".join(f'<div style="font:12px monospace;opacity:.85">{html.escape(n)}</div>' for n in notes)
    title_html = (f'<div class="yart-grid-title" style="font:600 14px var(--jp-content-font-family, sans-serif);'
                  f'margin:2px 0">{html.escape(experiment.title)}</div><div style="{MUTED};margin-bottom:6px">'
                  f"{html.escape(fixed)}</div>")
    plain = [experiment.title, fixed]
    if status is not None:
        plain.insert(0, progress_bundle(status)["text/plain"])
    for slot in experiment.slots:
        labels = ", ".join(f"{k}={v}" for k, v in experiment.labels(slot).items())
        what = slot.image.caption() if slot.image is not None else (
            f"{FAILED} {slot.error.message}" if slot.error else " · ".join(
                p for p in (slot.state, slot.note, slot.operation_id) if p))
        plain.append(f"{labels}: {what}")
    plain.extend(notes)
    return {"text/html": f'<div class="yart-grid" data-experiment="{html.escape(experiment.id, quote=True)}">'
                         f'{top}{title_html}{"".join(tables)}{note_html}</div>',
            "text/plain": "\n".join(plain)}


def grid_output(
    experiment: GridSource, *, inline: str = "preview", status: BatchStatus | None = None, notes: Sequence[str] = (),
    scale: int = 2,
) -> tuple[Bundle, Bundle]:
    """:func:`grid_bundle` with the display metadata every picture output carries: the recipes."""
    return steps_now(grid_output_steps(experiment, inline=inline, status=status, notes=notes, scale=scale))


def grid_output_steps(
    experiment: GridSource, *, inline: str = "preview", status: BatchStatus | None = None, notes: Sequence[str] = (),
    scale: int = 2,
) -> Steps[tuple[Bundle, Bundle]]:
    """:func:`grid_output`, a row of pictures per step."""
    recipes = [image.recipe() for image in experiment]
    bundle = yield from grid_bundle_steps(experiment, inline=inline, status=status, notes=notes, scale=scale)
    return bundle, {"yart_jupyter": {"recipes": recipes, "experiment": experiment.id}}


class Grid:
    """``exp.grid()``: the grid as an object Jupyter displays."""

    def __init__(self, experiment: GridSource) -> None:
        self.experiment = experiment

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[Bundle, Bundle]:
        from ..core.settings import current

        return grid_output(self.experiment, inline=current().inline)


class GridView:
    """A sweep shown in its cell: the batch's progress bar, and under it the grid, each cell updated as
    its generation starts, arrives or fails (redrawn at most twice a second, and once at the end).

    The bar is an output of its own: it moves every second, and redrawing it costs a few hundred
    bytes, where the grid with its pictures is the size of every preview in it.
    """

    def __init__(self, experiment: GridSource, status: BatchStatus, *, errors_in_place: bool,
                 inline: str = "preview", min_interval: float = 0.5, grid_out: str | None = None) -> None:
        from IPython.display import display

        self.grid_out = grid_out
        self.experiment = experiment
        self.status = status
        self.inline = inline
        self.errors_in_place = errors_in_place
        self.min_interval = min_interval
        self._width = cell_width(len(layout(experiment)[2]))
        self._last = 0.0
        self._changed = False
        self._redrawing: asyncio.Task[None] | None = None
        self.line = StatusLine(status)
        self._handle: Any = display(  # type: ignore[no-untyped-call]
            grid_bundle(experiment, inline=inline), raw=True, display_id=True)

    async def _draw(self, notes: Sequence[str] = (), final: bool = False) -> None:
        """Redraw the grid, a row per turn of the loop: while it fills in, with previews at the size
        shown (a third of the bytes per redraw); at the end once more at twice that, for
        high-density screens."""
        self._last = time.monotonic()
        if self._handle is None:
            return
        bundle, metadata = await steps_on_loop(grid_output_steps(self.experiment, inline=self.inline, notes=notes,
                                                                 scale=2 if final else 1))
        self._handle.update(bundle, raw=True, metadata=metadata)

    async def _redraws(self) -> None:
        """Redraw as often as the throttle allows while something changed (a change is never left undrawn)."""
        while self._changed:
            await asyncio.sleep(max(0.0, self._last + self.min_interval - time.monotonic()))
            self._changed = False
            await self._draw()

    def _soon(self) -> None:
        """Redraw soon (see :meth:`_redraws`); a view's events come from tasks on the loop."""
        self._changed = True
        if self._redrawing is None or self._redrawing.done():
            self._redrawing = asyncio.get_running_loop().create_task(self._redraws())

    def _stop_redraws(self) -> None:
        self._changed = False
        if self._redrawing is not None and not self._redrawing.done():
            self._redrawing.cancel()

    async def _final(self, notes: Sequence[str]) -> None:
        """The last drawing: nothing drawn after it."""
        self._stop_redraws()
        await self._draw(notes, final=True)

    def prepare_picture(self, image: Any) -> None:
        """Off the loop: the previews an arriving picture is shown with in its cell of the grid."""
        if self.inline == "preview":
            image.preview(slot_longest(image.size, self._width, 1))
            image.preview(slot_longest(image.size, self._width, 2))

    def prepare_finish(self, images: Sequence[Any]) -> list[str]:
        """Off the loop: ``--grid-out``'s picture of the whole grid, written; a line saying where."""
        if not self.grid_out:
            return []
        try:
            return [f"grid saved to {self.experiment.save_grid(self.grid_out)}"]
        except OSError as exc:
            return [f"{FAILED} could not save the grid to {self.grid_out}: {exc.strerror or exc}"]

    def progress(self, status: BatchStatus) -> None:
        self.line.update(status)

    def item(self, event: ItemEvent) -> None:
        self.experiment.update(event)
        self._soon()

    async def finished(self, images: Sequence[Any], failures: Sequence[Exception], notes: Sequence[str]) -> None:
        errors_shown = {id(slot.error) for slot in self.experiment.slots if slot.error is not None}
        extra = [f"{FAILED} {line}" for line in failure_lines([f for f in failures if id(f) not in errors_shown])]
        failed = len(errors_shown)
        summary = [f"{FAILED} {failed} of {self.experiment.size} failed (each cell says why)"] if failed else []
        self.line.replace({"text/plain": ""})
        await self._final([*notes, *extra, *summary])
        if images and self.inline != "full":
            await show_full_size(images)

    def stopped(self, status: BatchStatus) -> None:
        """Interrupted: the grid as it is, drawn at once (the batch is being cancelled)."""
        self._stop_redraws()
        self.line.replace({"text/plain": ""})
        if self._handle is not None:
            bundle, metadata = grid_output(self.experiment, inline=self.inline, notes=[status.interrupted_line()])
            self._handle.update(bundle, raw=True, metadata=metadata)
