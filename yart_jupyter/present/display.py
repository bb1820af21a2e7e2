"""How results, status lines and errors look in a notebook: one place for all display bundles.

Every bundle has ``text/html`` and ``text/plain``; a status line is a display handle that is
updated in place and finally replaced by the result (or the error), in the cell that made it.
"""

from __future__ import annotations

import base64
import html
import json
import os
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from ..core.status import BatchStatus

Bundle = dict[str, Any]

#: The only symbols outputs use: each is in JupyterLab's default fonts (a browser test renders them).
FAILED, WARNING, BULLET = "✖", "⚠", "•"

#: Muted and error text styles that follow JupyterLab's light and dark themes (used by the form).
MUTED = "color: var(--jp-ui-font-color2, #666); font-size: 12px"
ERROR = "color: var(--jp-error-color1, #d32f2f); font-size: 12px"


class Picture(Protocol):
    """What a figure shows: a GeneratedImage, as far as display is concerned."""

    image_bytes: bytes
    mime_type: str
    #: Files the picture was saved to (a preview links to the first one).
    saved: list[Path]

    @property
    def size(self) -> tuple[int, int] | None: ...

    @property
    def prompt(self) -> str: ...

    @property
    def prompt_line(self) -> str: ...

    def caption(self) -> str: ...

    def recipe(self) -> dict[str, Any]: ...

    def preview(self, longest: int) -> tuple[bytes, str, tuple[int, int]]: ...


class Entry(Protocol):
    """What a history or pending row shows: a store Record, as far as display is concerned."""

    @property
    def operation_id(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def prompt(self) -> str: ...

    @property
    def seed(self) -> int | None: ...

    @property
    def aspect(self) -> str | None: ...

    @property
    def submitted_at(self) -> datetime: ...

    @property
    def duration(self) -> float | None: ...

    @property
    def api(self) -> str: ...

    @property
    def answer_lost(self) -> bool: ...


_CELL = "padding:1px 8px;text-align:left;vertical-align:top"


def table_html(header: Sequence[str], rows: Sequence[Sequence[object]], css_class: str = "") -> str:
    """A table of text, escaped, left-aligned in every renderer (exported HTML right-aligns cells)."""
    head = "".join(f'<th style="{_CELL}">{html.escape(str(h))}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="{_CELL}">{html.escape("" if c is None else str(c))}</td>'
                                    for c in row) + "</tr>" for row in rows)
    return (f'<table class="{html.escape(css_class, quote=True)}" style="font:12px monospace;border-collapse:collapse">'
            f"<tr>{head}</tr>{body}</table>")


def span(text: str, style: str = MUTED) -> str:
    """A styled, escaped piece of HTML text (widget labels, captions, errors)."""
    return f'<span style="{style}">{html.escape(text)}</span>'

_FIGURE = (
    '<figure data-yart-recipe="{recipe}" '
    'style="margin:0 12px 12px 0;display:inline-block;vertical-align:top;max-width:{width}px">'
    '{picture}'
    '<figcaption style="font:12px/1.4 monospace;opacity:.75;margin-top:4px">{caption}<br>{prompt}</figcaption>'
    "</figure>"
)
_IMG = '<img src="data:{mime};base64,{data}" alt="{alt}" style="width:100%;height:auto;border-radius:4px">'
_NONE = ('<div style="width:{width}px;max-width:100%;aspect-ratio:{ratio};display:flex;align-items:center;'
         'justify-content:center;border:1px dashed var(--jp-border-color1, #bbb);border-radius:4px;'
         'font:12px monospace;opacity:.7">not embedded (inline = none)</div>')


def shown_width(images: Sequence[Picture]) -> tuple[int, int]:
    """The largest (width, height) in CSS pixels a figure is shown at: one image large, several smaller."""
    return (720, 640) if len(images) == 1 else (340, 420)


def _link(image: Picture) -> str | None:
    """A relative link to the picture's saved file, when there is one under the notebook's folder."""
    for path in image.saved:
        try:
            relative = os.path.relpath(path)
        except ValueError:
            continue
        if not relative.startswith(".."):
            return quote(Path(relative).as_posix())
    return None


def images_bundle(images: Sequence[Picture], notes: Sequence[str] = (), inline: str = "preview") -> Bundle:
    """A grid of figures with captions (one image is a grid of one), plus any notes below.

    ``inline``: ``preview`` embeds each picture re-encoded at twice the size it is shown at (for
    high-density screens) and says so in the caption; ``full`` embeds the service's bytes;
    ``none`` embeds no picture. A preview of a saved picture links to the file.
    """
    width, tallest = shown_width(images)
    figures = []
    for image in images:
        size = image.size
        shown = min(width, size[0], tallest * size[0] // size[1]) if size else width
        caption = image.caption()
        link = _link(image)
        if inline == "none":
            picture = _NONE.format(width=shown, ratio=f"{size[0]}/{size[1]}" if size else "1")
        else:
            data, mime = image.image_bytes, image.mime_type
            if inline == "preview":
                data, mime, (w, h) = image.preview(2 * max(shown, shown * size[1] // size[0]) if size else 2 * shown)
                if data is not image.image_bytes:
                    caption += f" · preview {w}×{h}"
            picture = _IMG.format(mime=mime, data=base64.b64encode(data).decode("ascii"),
                                  alt=html.escape(image.prompt[:100], quote=True))
        if link is not None:
            picture = f'<a href="{html.escape(link, quote=True)}" title="full size: {html.escape(link)}">{picture}</a>'
        figures.append(_FIGURE.format(
            width=shown, picture=picture, caption=html.escape(caption),
            recipe=html.escape(json.dumps(image.recipe(), ensure_ascii=False), quote=True),
            prompt=html.escape(image.prompt_line[:320]),
        ))
    note_html = "".join(f'<div style="font:12px monospace;opacity:.8">{html.escape(n)}</div>' for n in notes)
    plain = "\n".join([*(f"{i.caption()}  {i.prompt_line[:160]}" for i in images), *notes])
    return {"text/html": f'<div class="yart-result">{"".join(figures)}{note_html}</div>', "text/plain": plain}


def images_output(
    images: Sequence[Picture], notes: Sequence[str] = (), inline: str = "preview",
) -> tuple[Bundle, Bundle]:
    """:func:`images_bundle` and its display metadata: every picture's recipe, so a saved notebook
    keeps how each of its pictures was made (``yart_jupyter.info("notebook.ipynb")`` reads them)."""
    return images_bundle(images, notes, inline), {"yart_jupyter": {"recipes": [image.recipe() for image in images]}}


#: The most pictures a form's static copy keeps (the newest): the notebook stays light however long
#: the form is used; every picture is in the store and in ``%yandexart history``.
STATIC_COPY_LIMIT = 24


def static_copy_bundle(images: Sequence[Picture], copy_id: str, inline: str = "preview") -> Bundle:
    """What a form leaves in the notebook: its newest results as plain output (previews and captions),
    since widget views vanish when the notebook is reopened without the kernel. The live form hides
    it with a style rule naming ``copy_id``, so it shows only where the form no longer does."""
    if not images:
        return {"text/plain": ""}
    grid = images_bundle(images[:STATIC_COPY_LIMIT], inline=inline)
    older = len(images) - STATIC_COPY_LIMIT
    more = f"; {older} older ones are in %yandexart history" if older > 0 else ""
    title = (f'<div style="{MUTED};margin:4px 0">YandexART form results ({len(images)}, newest first{more}; '
             "a copy kept in the notebook, since the form needs the live kernel)</div>")
    return {"text/html": f'<div class="yart-static-copy" data-form="{html.escape(copy_id, quote=True)}">'
                         f'{title}{grid["text/html"]}</div>',
            "text/plain": f"YandexART form results (newest first):\n{grid['text/plain']}"}


def hide_static_copy(copy_id: str) -> str:
    """The style rule a live form carries, so its static copy does not show twice."""
    return f'<style>.yart-static-copy[data-form="{html.escape(copy_id, quote=True)}"]{{display:none}}</style>'


def recipe_bundle(recipe: dict[str, Any], picture: bytes | None = None) -> Bundle:
    """A recipe as a picture (when there is one), a table of its parameters and the cell that makes it."""
    from ..core.provenance import cell_text

    rows = [("prompt", " | ".join(m["text"] for m in recipe["messages"]))]
    rows += [("weights", ", ".join(f"{m.get('weight', 1):g}" for m in recipe["messages"]))]
    rows += [(key.replace("_", " "), str(recipe[key])) for key in (
        "seed", "aspect", "mime_type", "model_uri", "model_version", "operation_id", "submitted_at",
        "finished_at", "generator") if recipe.get(key) is not None]
    table = "".join(f"<tr><th style='text-align:left;padding-right:12px'>{html.escape(k)}</th>"
                    f"<td>{html.escape(v)}</td></tr>" for k, v in rows)
    cell = cell_text(recipe)
    image = ""
    if picture is not None:
        mime = "image/png" if picture[:4] == b"\x89PNG" else "image/jpeg"
        image = (f'<img src="data:{mime};base64,{base64.b64encode(picture).decode("ascii")}" '
                 'style="max-width:320px;height:auto;border-radius:4px;float:left;margin:0 12px 8px 0">')
    return {
        "text/html": f'<div class="yart-info">{image}<table style="font:12px monospace">{table}</table>'
                     f'<pre style="clear:both;font-size:12px">{html.escape(cell)}</pre></div>',
        "text/plain": "\n".join([*(f"{k}: {v}" for k, v in rows), "", cell]),
    }


#: The progress bar's parts: done, from the store, failed, running (theme colours, with fallbacks).
_BAR_PARTS = (
    "var(--jp-success-color1, #388e3c)",
    "var(--jp-info-color1, #0288d1)",
    "var(--jp-error-color1, #d32f2f)",
    "repeating-linear-gradient(135deg, var(--jp-brand-color2, #90caf9) 0 6px, "
    "var(--jp-brand-color3, #bbdefb) 6px 12px)",
)


def progress_bar_html(status: BatchStatus, width: int = 160) -> str:
    """A bar in the theme's colours: done, from the store, failed and running parts of the batch."""
    parts = "".join(
        f'<div class="yart-bar-part" style="width:{share * 100:.1f}%;background:{colour}"></div>'
        for share, colour in zip(status.fractions(), _BAR_PARTS, strict=True) if share > 0
    )
    return (f'<div class="yart-bar" role="progressbar" aria-valuemin="0" aria-valuemax="{status.total}" '
            f'aria-valuenow="{status.done}" style="flex:0 0 {width}px;height:8px;border-radius:4px;display:flex;'
            f'overflow:hidden;background:var(--jp-layout-color3, #e0e0e0)">{parts}</div>')


def progress_text_bar(status: BatchStatus, width: int = 20) -> str:
    """The bar in plain characters, for terminals and text outputs: ``[####==......]``."""
    cells = []
    for share, mark in zip(status.fractions(), "#+x=", strict=True):
        cells.append(mark * round(share * width))
    bar = "".join(cells)[:width]
    return f"[{bar}{'.' * (width - len(bar))}]"


def progress_bundle(status: BatchStatus) -> Bundle:
    """A batch's progress: the bar, then done, running, cached, failed, time left and elapsed."""
    text = status.text()
    return {
        "text/html": f'<div class="yart-status" style="display:flex;align-items:center;gap:8px;font:12px '
                     f'monospace;opacity:.9">{progress_bar_html(status)}<span>{html.escape(text)}</span></div>',
        "text/plain": f"{progress_text_bar(status)} {text}",
    }


def message_bundle(text: str, kind: str = "info") -> Bundle:
    """A one-line message: ``info``, ``warning`` or ``error``."""
    colour = {"error": "#d32f2f", "warning": "#ed6c02"}.get(kind, "inherit")
    icon = {"error": FAILED, "warning": WARNING}.get(kind, BULLET)
    style = f"font:13px monospace;color:{colour}"
    return {
        "text/html": f'<div class="yart-{kind}" style="{style}">{icon} {html.escape(text)}</div>',
        "text/plain": f"{icon} {text}",
    }


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
        self.errors_in_place = errors_in_place
        self.inline = inline

    def progress(self, status: BatchStatus) -> None:
        self.line.update(status)

    def item(self, event: Any) -> None:
        """A plain cell shows the batch as a whole: its status line."""

    def finished(self, images: Sequence[Picture], failures: Sequence[Exception], notes: Sequence[str]) -> None:
        lines = [*notes, *(f"{FAILED} {failure}" for failure in failures)]
        if images:
            self.line.replace(*images_output(images, lines, self.inline))
            if self.inline != "full":
                show_full_size(images)
        elif self.errors_in_place and lines:
            self.line.replace(message_bundle("; ".join(lines), "error"))
        else:
            self.line.replace({"text/plain": ""})

    def stopped(self, status: BatchStatus) -> None:
        text = status.interrupted_line()
        self.line.replace(message_bundle(text, "warning") if self.errors_in_place else {"text/plain": ""})


def show_full_size(images: Sequence[Picture]) -> None:
    """Below previews, in a live kernel: one click shows a picture at full size (a plain shell has
    no widgets, and needs none: ``img.image_bytes`` is the full picture)."""
    from IPython import get_ipython
    from IPython.display import display

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return
    from .fullsize import full_size

    display(full_size(images))  # type: ignore[no-untyped-call]


def text_bundle(rows: Sequence[str]) -> Bundle:
    """Rows of monospaced text (``%yandexart jobs``, help)."""
    return {"text/plain": "\n".join(rows),
            "text/html": "<pre style='font-size:12px'>" + "\n".join(html.escape(r) for r in rows) + "</pre>"}


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def history_bundle(records: Sequence[Entry], thumbnails: Sequence[bytes | None]) -> Bundle:
    """A gallery of thumbnails with prompt, seed, aspect, time and duration."""
    cells = []
    lines = []
    for number, (record, thumb) in enumerate(zip(records, thumbnails, strict=True), 1):
        duration = f"{record.duration:.1f} s" if record.duration is not None else ""
        meta = " · ".join(str(p) for p in (
            f"#{number}", f"seed {record.seed}" if record.seed is not None else "", record.aspect or "",
            _when(record.submitted_at), duration, record.status if record.status != "done" else "", record.operation_id,
        ) if p)
        picture = (
            f'<img src="data:image/jpeg;base64,{base64.b64encode(thumb).decode("ascii")}" '
            'style="width:100%;height:auto;border-radius:3px">'
            if thumb else '<div style="height:120px;display:flex;align-items:center;justify-content:center;'
            f'opacity:.6;font:12px monospace">{html.escape(record.status)}</div>'
        )
        cells.append(
            '<figure style="margin:0 10px 10px 0;display:inline-block;vertical-align:top;width:200px">'
            f'{picture}<figcaption style="font:11px/1.35 monospace;opacity:.8">'
            f"{html.escape(record.prompt[:90])}<br>{html.escape(meta)}</figcaption></figure>"
        )
        lines.append(f"{meta}  {record.prompt[:70]}")
    return {"text/html": f'<div class="yart-history">{"".join(cells)}</div>', "text/plain": "\n".join(lines)}


class Sweep(Protocol):
    """What a line of ``%yandexart history --experiments`` shows: a store ExperimentRecord."""

    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def title(self) -> str: ...

    @property
    def axes(self) -> tuple[tuple[str, tuple[Any, ...]], ...]: ...

    @property
    def items(self) -> tuple[tuple[tuple[Any, ...], str], ...]: ...


def experiments_bundle(experiments: Sequence[Sweep]) -> Bundle:
    """The store's sweeps, newest first: id, time, shape and title, and how to show one again."""
    rows = []
    for e in experiments:
        shape = " × ".join(f"{name} {len(values)}" for name, values in e.axes)
        rows.append((e.id, _when(e.created_at), f"{len(e.items)} ({shape})", e.title[:80]))
    hint = "Show one again as its grid: %yandexart history --experiment ID"
    table = table_html(("id", "made", "cells", "prompt"), rows, "yart-experiments")
    return {"text/html": f'{table}<div style="font:12px monospace;opacity:.8">{hint}</div>',
            "text/plain": "\n".join([*("  ".join(row) for row in rows), hint])}


#: What ``%yandexart pending`` says of each state, and what ``resume --all`` will do with it.
PENDING_STATES = {
    "queued": "queued: never sent (resume --all starts it)",
    "submitting": "start sent, answer unknown (resume --all re-sends it with the same Idempotency-Key)",
    "pending": "not collected",
}


#: The state of a synchronous request sent whose answer never came.
LOST_STATE = ("sent, answer lost (the Images API keeps nothing to collect; resume --all --resend-lost sends it "
              "again, which may bill it twice)")


def pending_state(record: Entry) -> str:
    """How ``pending`` describes a record still on its way; an operation the service no longer keeps is
    said to have expired."""
    if record.answer_lost:
        return LOST_STATE
    if record.status == "pending" and record.submitted_at.timestamp() < time.time() - 3 * 86400:
        return "expired on the server (results are kept 3 days)"
    return PENDING_STATES.get(record.status, record.status)


def records_table(records: Sequence[Entry], running_here: set[str]) -> Bundle:
    """A table of records (for ``%yandexart pending``): operations, then generations never started."""
    rows = []
    plain = []
    for r in records:
        unsent = r.status in ("queued", "submitting")
        here = r.operation_id in running_here
        note = "in progress in this kernel" if here else pending_state(r)
        cells = ("(no id yet)" if unsent else r.operation_id, _when(r.submitted_at),
                 str(r.seed) if r.seed is not None else "no seed" if r.api == "images" else "", r.aspect or "",
                 r.prompt[:60], note)
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        plain.append("  ".join(cells))
    header = "".join(f"<th>{h}</th>" for h in ("operation", "submitted", "seed", "aspect", "prompt", "state"))
    hint = "Collect or finish them with %yandexart resume --all (or one operation id at a time)."
    return {
        "text/html": f'<table class="yart-pending" style="font:12px monospace"><tr>{header}</tr>{"".join(rows)}</table>'
                     f'<div style="font:12px monospace;opacity:.8">{hint}</div>',
        "text/plain": "\n".join([*plain, hint]),
    }
