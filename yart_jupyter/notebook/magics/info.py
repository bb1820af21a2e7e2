"""``%yandexart info PATH``: an image file's (or a notebook's) recipe, and the cell that makes it again."""

from __future__ import annotations

import asyncio
from argparse import Namespace
from pathlib import Path

from .face import Face
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart info", "Show the recipe written into an image file (or every one in a notebook or "
                                  "exported page), with the equivalent cell, ready to copy.")
    p.add_argument("path", metavar="PATH", help="an image saved by yart_jupyter, a .ipynb, or an exported .html")
    return p


async def handle(face: Face, options: Namespace) -> None:
    from ...core.provenance import info
    from ...present.pictures import recipe_bundle

    found = await asyncio.to_thread(info, options.path)
    recipes = found if isinstance(found, list) else [found]
    picture = None
    if not isinstance(found, list):
        picture = await asyncio.to_thread(Path(options.path).expanduser().read_bytes)
    for recipe in recipes:
        face.show(recipe_bundle(recipe, picture))
    face.set_result(found)
