"""``%yandexart prune [--older-than DAYS] [--max-size MB]``: free space in the local store."""

from __future__ import annotations

import asyncio
from argparse import Namespace

from ...core import errors
from .face import Face
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart prune", "Delete old records and images from the local store (pending ones are kept).")
    p.add_argument("--older-than", type=float, dest="older_than", metavar="DAYS", help="records older than DAYS")
    p.add_argument("--max-size", type=float, dest="max_size", metavar="MB",
                   help="then the oldest, until the images take at most MB")
    return p


async def handle(face: Face, options: Namespace) -> None:
    from ...present.html import message_bundle

    if options.older_than is None and options.max_size is None:
        raise errors.MagicUsageError("%yandexart prune: give --older-than DAYS and/or --max-size MB")
    for name, value in (("--older-than", options.older_than), ("--max-size", options.max_size)):
        if value is not None and value < 0:
            raise errors.RequestValidationError(name, value, "must not be negative")
    removed, freed = await asyncio.to_thread(
        face.store().prune,
        older_than=options.older_than * 86400 if options.older_than is not None else None,
        max_bytes=int(options.max_size * 1024 * 1024) if options.max_size is not None else None,
    )
    face.show(message_bundle(f"Pruned {removed} record{'s' if removed != 1 else ''}, "
                             f"{freed / 1024 / 1024:.1f} MB freed (pending operations are kept)."))
