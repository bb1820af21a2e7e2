"""``%yandexart rerun PATH|#N|OPERATION_ID [--no-cache]``: make a picture again from its recipe, and compare."""

from __future__ import annotations

import asyncio
from argparse import Namespace

from .face import Face
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart rerun", "Generate a picture again with the same parameters (from an image file's "
                                   "recipe, a history entry or a recorded operation) and say whether the pixels match; "
                                   "a generation that failed is sent again.")
    p.add_argument("source", metavar="PATH|#N|OPERATION_ID",
                   help="an image saved by yart_jupyter, a history entry (#1: the newest) or an operation id")
    p.add_argument("--no-cache", action="store_true", dest="no_cache",
                   help="generate anew even when the local store has this exact request")
    return p


async def handle(face: Face, options: Namespace) -> None:
    from ...core.status import BatchStatus
    from ...engine import Batch, prepare, run_in_view
    from ...experiments.rerun import MAGIC, find_origin, judged, request_of
    from ...present.html import message_bundle
    from ...present.live import CellView

    origin = await asyncio.to_thread(find_origin, face.store(), options.source, "%yandexart rerun", MAGIC)
    status = BatchStatus(1)
    batch = prepare(face.store(), Batch([request_of(face.settings, origin.recipe)], use_cache=not options.no_cache),
                    status)
    view = CellView(status, errors_in_place=False, inline=face.settings.inline)
    image = (await run_in_view(face.client(), face.store(), batch, view, status=status))[0]
    rerun = await asyncio.to_thread(judged, origin, image)
    face.show(message_bundle(rerun.verdict, "warning" if rerun.same is False else "info"))
    face.set_result(image)
