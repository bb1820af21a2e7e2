"""``%yandexart compare A B [C ...]``: pictures side by side with their parameters' differences."""

from __future__ import annotations

import asyncio
from argparse import Namespace

from .face import Face
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart compare", "Show pictures side by side at one size with a table of their parameters: "
                                     "what differs from the first is highlighted, the prompts diffed word by word.")
    p.add_argument("sources", nargs="+", metavar="A",
                   help="an operation id, a history entry (#2: the second newest) or an image file; two or more")
    return p


async def handle(face: Face, options: Namespace) -> None:
    from ...experiments.comparison import CompareError, compare

    if len(options.sources) < 2:
        raise CompareError("compare needs at least two pictures (operation ids, #N history entries or image files)")
    comparison = await asyncio.to_thread(compare, *options.sources, store=face.store())
    face.display(comparison)
    face.set_result(comparison)
