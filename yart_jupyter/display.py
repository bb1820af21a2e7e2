"""How results, status lines and errors look in a notebook: one place for all display bundles.

Every bundle has ``text/html`` and ``text/plain``; a status line is a display handle that is
updated in place and finally replaced by the result (or the error), in the cell that made it.
"""

from __future__ import annotations

import base64
import html
import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from .status import BatchStatus

Bundle = dict[str, Any]

#: Muted and error text styles that follow JupyterLab's light and dark themes (used by the form).
MUTED = "color: var(--jp-ui-font-color2, #666); font-size: 12px"
ERROR = "color: var(--jp-error-color1, #d32f2f); font-size: 12px"


class Picture(Protocol):
    """What a figure shows: a GeneratedImage, as far as display is concerned."""

    image_bytes: bytes
    mime_type: str

    @property
    def size(self) -> tuple[int, int] | None: ...

    @property
    def prompt(self) -> str: ...

    def caption(self) -> str: ...

    def recipe(self) -> dict[str, Any]: ...


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


def span(text: str, style: str = MUTED) -> str:
    """A styled, escaped piece of HTML text (widget labels, captions, errors)."""
    return f'<span style="{style}">{html.escape(text)}</span>'

_FIGURE = (
    '<figure data-yart-recipe="{recipe}" '
    'style="margin:0 12px 12px 0;display:inline-block;vertical-align:top;max-width:{width}px">'
    '<img src="data:{mime};base64,{data}" alt="{alt}" style="width:100%;height:auto;border-radius:4px">'
    '<figcaption style="font:12px/1.4 monospace;opacity:.75;margin-top:4px">{caption}<br>{prompt}</figcaption>'
    "</figure>"
)


def images_bundle(images: Sequence[Picture], notes: Sequence[str] = ()) -> Bundle:
    """A grid of figures with captions (one image is a grid of one), plus any notes below."""
    width, tallest = (720, 640) if len(images) == 1 else (340, 420)
    figures = []
    for image in images:
        size = image.size
        shown = min(width, size[0], tallest * size[0] // size[1]) if size else width
        figures.append(_FIGURE.format(
            width=shown, mime=image.mime_type, data=base64.b64encode(image.image_bytes).decode("ascii"),
            alt=html.escape(image.prompt[:100], quote=True), caption=html.escape(image.caption()),
            recipe=html.escape(json.dumps(image.recipe(), ensure_ascii=False), quote=True),
            prompt=html.escape(image.prompt[:160]),
        ))
    note_html = "".join(f'<div style="font:12px monospace;opacity:.8">{html.escape(n)}</div>' for n in notes)
    plain = "\n".join([*(f"{i.caption()}  {i.prompt[:80]}" for i in images), *notes])
    return {"text/html": f'<div class="yart-result">{"".join(figures)}{note_html}</div>', "text/plain": plain}


def images_output(images: Sequence[Picture], notes: Sequence[str] = ()) -> tuple[Bundle, Bundle]:
    """:func:`images_bundle` and its display metadata: every picture's recipe, so a saved notebook
    keeps how each of its pictures was made (``yart_jupyter.info("notebook.ipynb")`` reads them)."""
    return images_bundle(images, notes), {"yart_jupyter": {"recipes": [image.recipe() for image in images]}}


def recipe_bundle(recipe: dict[str, Any], picture: bytes | None = None) -> Bundle:
    """A recipe as a picture (when there is one), a table of its parameters and the cell that makes it."""
    from .provenance import cell_text

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


def status_bundle(text: str) -> Bundle:
    """A one-line, in-place status."""
    return {
        "text/html": f'<div class="yart-status" style="font:13px monospace;opacity:.85">⏳ {html.escape(text)}</div>',
        "text/plain": f"⏳ {text}",
    }


def message_bundle(text: str, kind: str = "info") -> Bundle:
    """A one-line message: ``info``, ``warning`` or ``error``."""
    colour = {"error": "#d32f2f", "warning": "#ed6c02"}.get(kind, "inherit")
    icon = {"error": "✖", "warning": "⚠"}.get(kind, "•")
    style = f"font:13px monospace;color:{colour}"
    return {
        "text/html": f'<div class="yart-{kind}" style="{style}">{icon} {html.escape(text)}</div>',
        "text/plain": f"{icon} {text}",
    }


class StatusLine:
    """A display handle shown once and updated in place (throttled); works from background tasks."""

    def __init__(self, text: str, *, min_interval: float = 0.2) -> None:
        from IPython.display import display

        self._handle: Any = display(status_bundle(text), raw=True, display_id=True)  # type: ignore[no-untyped-call]
        self._last = 0.0
        self._min_interval = min_interval

    def update(self, text: str, *, force: bool = False) -> None:
        """Show a new status text (skipped when the last update was very recent, unless forced)."""
        now = time.monotonic()
        if not force and now - self._last < self._min_interval:
            return
        self._last = now
        self._show(status_bundle(text))

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

    def __init__(self, status: BatchStatus, *, errors_in_place: bool) -> None:
        self.line = StatusLine(status.text())
        self.errors_in_place = errors_in_place

    def progress(self, status: BatchStatus) -> None:
        self.line.update(status.text())

    def finished(self, images: Sequence[Picture], failures: Sequence[Exception], notes: Sequence[str]) -> None:
        lines = [*notes, *(f"✖ {failure}" for failure in failures)]
        if images:
            self.line.replace(*images_output(images, lines))
        elif self.errors_in_place and lines:
            self.line.replace(message_bundle("; ".join(lines), "error"))
        else:
            self.line.replace({"text/plain": ""})

    def stopped(self, status: BatchStatus) -> None:
        text = status.interrupted_line()
        self.line.replace(message_bundle(text, "warning") if self.errors_in_place else {"text/plain": ""})


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
    for record, thumb in zip(records, thumbnails, strict=True):
        duration = f"{record.duration:.1f} s" if record.duration is not None else ""
        meta = " · ".join(str(p) for p in (
            f"seed {record.seed}" if record.seed is not None else "", record.aspect or "", _when(record.submitted_at),
            duration, record.status if record.status != "done" else "", record.operation_id,
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


#: What ``%yandexart pending`` says of each state, and what ``resume --all`` will do with it.
PENDING_STATES = {
    "queued": "queued: never sent (resume --all starts it)",
    "submitting": "start sent, answer unknown (resume --all re-sends it with the same Idempotency-Key)",
    "pending": "not collected",
}


def records_table(records: Sequence[Entry], running_here: set[str]) -> Bundle:
    """A table of records (for ``%yandexart pending``): operations, then generations never started."""
    rows = []
    plain = []
    for r in records:
        unsent = r.status in ("queued", "submitting")
        here = r.operation_id in running_here
        note = "in progress in this kernel" if here else PENDING_STATES.get(r.status, r.status)
        cells = ("(no id yet)" if unsent else r.operation_id, _when(r.submitted_at),
                 str(r.seed) if r.seed is not None else "", r.aspect or "", r.prompt[:60], note)
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        plain.append("  ".join(cells))
    header = "".join(f"<th>{h}</th>" for h in ("operation", "submitted", "seed", "aspect", "prompt", "state"))
    hint = "Collect or finish them with %yandexart resume --all (or one operation id at a time)."
    return {
        "text/html": f'<table class="yart-pending" style="font:12px monospace"><tr>{header}</tr>{"".join(rows)}</table>'
                     f'<div style="font:12px monospace;opacity:.8">{hint}</div>',
        "text/plain": "\n".join([*plain, hint]),
    }
