"""``%yandexart models``: the model catalogue as a person reads it, with how to switch."""

from __future__ import annotations

import html
from argparse import Namespace

from .face import Face
from .parsers import Parser


def parser() -> Parser:
    return Parser("%yandexart models", "List the models the service serves: the API, seed, weights, aspect ratios, "
                                       "prompt limit and what is known of each (with dates).")


async def handle(face: Face, options: Namespace) -> None:
    from ...core.models import LIVING_MODEL, TABLE_HEADER, table_rows, table_text
    from ...present.html import table_html

    current = face.settings.model_uri or "yandex-art/latest"
    switch = (f'Switch: <code>%config YandexArt.model_uri = "{LIVING_MODEL}"</code> or <code>--model '
              f"{LIVING_MODEL}</code>; a model not listed: <code>--model images:NAME</code> when the Images API "
              f"serves it. In use now: <code>{html.escape(current)}</code>.")
    face.show({"text/html": table_html(TABLE_HEADER, table_rows(), "yart-models")
               + f'<div style="font:12px monospace;opacity:.8">{switch}</div>',
               "text/plain": table_text()})
