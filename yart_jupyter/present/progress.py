"""A batch's progress as a bar and a line, in HTML and in text (for terminals)."""

from __future__ import annotations

import html

from ..core.status import BatchStatus
from .html import Bundle

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
