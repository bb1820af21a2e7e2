"""``%yandexart info PATH|#N|OPERATION_ID``: an image file's (a notebook's, a stored generation's) recipe,
and the cell that makes it again."""

from __future__ import annotations

import asyncio
from argparse import Namespace
from pathlib import Path
from typing import Any

from .face import Face
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart info", "Show the recipe written into an image file (or every one in a notebook or "
                                  "exported page, or a generation of the store), with the equivalent cell, ready "
                                  "to copy.")
    p.add_argument("path", metavar="PATH|#N|OPERATION_ID", help="an image saved by yart_jupyter, a .ipynb, an "
                   "exported .html, a history entry (#1: the newest) or an operation id")
    return p


async def handle(face: Face, options: Namespace) -> None:
    from ...core.provenance import info
    from ...present.pictures import recipe_bundle

    stored = await asyncio.to_thread(_stored, face, options.path)
    if stored is not None:
        face.show(stored[0])
        face.set_result(stored[1])
        return
    found = await asyncio.to_thread(info, options.path)
    recipes = found if isinstance(found, list) else [found]
    picture = None
    if not isinstance(found, list):
        picture = await asyncio.to_thread(Path(options.path).expanduser().read_bytes)
    for recipe in recipes:
        face.show(recipe_bundle(recipe, picture))
    face.set_result(found)


def _stored(face: Face, reference: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The shown recipe and the recipe of the store's generation ``reference`` names (not a file)."""
    from ...experiments.rerun import MAGIC, RerunError, find_stored, recipe_of, without_picture
    from ...present.html import message_bundle
    from ...present.pictures import recipe_bundle

    if Path(reference).expanduser().exists():
        return None
    record = find_stored(face.store(), reference, "%yandexart info", MAGIC)
    if record is None:
        return None
    if not record.messages:
        raise RerunError(f"%yandexart info: {reference} is an operation the store knows only by its id (collected by "
                         "id): it holds no recipe of it")
    recipe, picture = recipe_of(record)
    shown = recipe_bundle(recipe, picture)
    if picture is None:  # it failed, runs still, or its picture was pruned: say so above the recipe
        note = message_bundle(without_picture(record, reference), "info")
        shown = {kind: note[kind] + ("\n\n" if kind == "text/plain" else "") + shown[kind] for kind in shown}
    return shown, recipe
