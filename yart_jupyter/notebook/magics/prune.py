"""``%yandexart prune [--older-than DAYS] [--max-size MB]``: free space in the local store."""

from __future__ import annotations

import asyncio
from argparse import Namespace

from ...core import errors
from ...core.units import days, megabytes
from .face import Face
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart prune", "Delete old records and images from the local store (pending ones are kept).")
    p.add_argument("--older-than", type=days, dest="older_than", metavar="DAYS",
                   help="records older than DAYS (30, or with a unit: 12h, 30d, 2w)")
    p.add_argument("--max-size", type=megabytes, dest="max_size", metavar="MB",
                   help="then the oldest, until the images take at most MB (500, or 500MB, 2GB)")
    return p


async def handle(face: Face, options: Namespace) -> None:
    from ...present.html import message_bundle
    from ...store.files import prune_limits, pruned_line

    if options.older_than is None and options.max_size is None:
        raise errors.MagicUsageError("%yandexart prune: give --older-than DAYS and/or --max-size MB")
    older_than, max_bytes = prune_limits(options.older_than, options.max_size, ("--older-than", "--max-size"))
    removed, freed = await asyncio.to_thread(face.store().prune, older_than=older_than, max_bytes=max_bytes)
    face.show(message_bundle(pruned_line(removed, freed)))
