"""The notebook's HTML vocabulary: bundles, theme-following styles, tables, messages (no IPython here)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

Bundle = dict[str, Any]

#: The only symbols outputs use: each is in JupyterLab's default fonts (a browser test renders them).
FAILED, WARNING, BULLET = "✖", "⚠", "•"

#: Muted and error text styles that follow JupyterLab's light and dark themes (used by the form).
MUTED = "color: var(--jp-ui-font-color2, #666); font-size: 12px"
ERROR = "color: var(--jp-error-color1, #d32f2f); font-size: 12px"


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


def message_bundle(text: str, kind: str = "info") -> Bundle:
    """A one-line message: ``info``, ``warning`` or ``error``."""
    colour = {"error": "#d32f2f", "warning": "#ed6c02"}.get(kind, "inherit")
    icon = {"error": FAILED, "warning": WARNING}.get(kind, BULLET)
    style = f"font:13px monospace;color:{colour}"
    return {
        "text/html": f'<div class="yart-{kind}" style="{style}">{icon} {html.escape(text)}</div>',
        "text/plain": f"{icon} {text}",
    }


def text_bundle(rows: Sequence[str]) -> Bundle:
    """Rows of monospaced text (``%yandexart jobs``, help)."""
    return {"text/plain": "\n".join(rows),
            "text/html": "<pre style='font-size:12px'>" + "\n".join(html.escape(r) for r in rows) + "</pre>"}
