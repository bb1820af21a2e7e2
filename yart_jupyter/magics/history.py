"""``%yandexart history [-n N] [--search TEXT]``: the local store's latest generations, as thumbnails."""

from __future__ import annotations

import asyncio
from typing import Any

from .face import Face
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart history", "Show the latest generations of the local store, newest first.")
    p.add_argument("-n", type=int, default=20, metavar="N", help="how many (default 20)")
    p.add_argument("--search", metavar="TEXT", help="only prompts containing TEXT (case-insensitive)")
    return p


async def run(face: Face, options: Any) -> None:
    from ..display import history_bundle, message_bundle

    store = face.store()
    records = await asyncio.to_thread(store.history, options.n, options.search)
    if not records:
        face.show(message_bundle("No generations recorded yet." if not options.search
                                 else f"No generation matches {options.search!r}."))
        return
    thumbs = await asyncio.to_thread(lambda: [store.thumbnail(r) for r in records])
    face.show(history_bundle(records, thumbs))
