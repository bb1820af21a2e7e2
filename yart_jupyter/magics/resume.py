"""``%yandexart resume OPERATION_ID|--all``: collect operations started earlier, through the engine."""

from __future__ import annotations

import asyncio
from typing import Any

from .. import errors
from ..outputs import check_pattern
from .face import Face, check_var
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart resume", "Collect operations started earlier (another cell, kernel or day).")
    p.add_argument("operation_id", nargs="?", help="the operation to collect")
    p.add_argument("--all", action="store_true", help="every operation the store lists as pending")
    p.add_argument("--out", metavar="PATTERN", help="save to files, as in the cell's --out")
    p.add_argument("--var", metavar="NAME", help="also store the result in the variable NAME")
    p.add_argument("--timeout", type=float, metavar="S", help="give up waiting after S seconds")
    return p


async def run(face: Face, options: Any) -> None:
    from ..display import CellView, message_bundle
    from ..engine import Batch
    from ..engine import run as run_batch
    from ..status import BatchStatus

    check_var(options.var)
    store = face.store()
    if options.all:
        if options.operation_id:
            raise errors.MagicUsageError("give an operation id or --all, not both")
        ids = [r.operation_id for r in await asyncio.to_thread(store.pending)]
        if not ids:
            face.show(message_bundle("Nothing pending: every recorded operation was collected."))
            return
    elif options.operation_id:
        ids = [options.operation_id]
    else:
        raise errors.MagicUsageError("%yandexart resume: give an operation_id, or --all")
    if options.out:
        check_pattern(options.out, len(ids))
    status = BatchStatus(len(ids))
    view = CellView(status, errors_in_place=options.all)
    try:
        images = await run_batch(face.client(), store, Batch(ids, timeout=options.timeout, out=options.out), view,
                                 status=status)
    except errors.BatchError as exc:
        from ..image import ImageSet

        face.set_result(ImageSet(exc.images), options.var)
        if not options.all:
            raise
        return
    face.set_result(images if options.all else images[0], options.var)
