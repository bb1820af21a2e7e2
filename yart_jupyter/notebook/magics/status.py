"""``%yandexart status``: what this notebook is set up to use, checked without sending anything."""

from __future__ import annotations

import html
from argparse import Namespace

from .face import Face
from .parsers import Parser


def parser() -> Parser:
    return Parser("%yandexart status", "Show what generations would use: the endpoint, the folder, the credentials "
                                       "(redacted), the model and the store, and what stands in the way; nothing "
                                       "is sent to the service.")


async def handle(face: Face, options: Namespace) -> None:
    from ...engine.setup import check_setup
    from ...present.html import table_html

    report = await check_setup(face.settings)
    rows = report.rows()
    verdict = ("Ready: nothing stands in the way (the service may still refuse the model or the key)." if report.ready
               else f"Not ready: {len(report.problems)} problem{'s' if len(report.problems) > 1 else ''} above.")
    face.show({"text/html": table_html(("", "in use"), rows, "yart-status")
               + f'<div style="font:12px monospace;opacity:.8">{html.escape(verdict)}</div>',
               "text/plain": f"{report.text()}\n{verdict}"})
