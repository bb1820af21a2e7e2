"""``%yandexart resume OPERATION_ID|--all``: collect operations started earlier, through the engine."""

from __future__ import annotations

import asyncio
from argparse import Namespace

from ...core import errors
from ...media.outputs import check_pattern
from .face import Face, check_var
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart resume", "Collect operations started earlier (another cell, kernel or day).")
    p.add_argument("operation_id", nargs="?", help="the operation to collect")
    p.add_argument("--all", action="store_true",
                   help="everything the store lists as pending: operations to collect, generations to start")
    p.add_argument("--resend-lost", action="store_true", dest="resend_lost",
                   help="with --all: also send again the Images API requests whose answer was lost (the service "
                        "keeps nothing to collect; it may bill them twice)")
    p.add_argument("--out", metavar="PATTERN", help="save to files, as in the cell's --out")
    p.add_argument("--var", metavar="NAME", help="also store the result in the variable NAME")
    p.add_argument("--timeout", type=float, metavar="S", help="give up waiting after S seconds")
    return p


async def handle(face: Face, options: Namespace) -> None:
    from ...core.status import BatchStatus
    from ...engine import Batch, Intent, Item, lost_answers, prepare, run_in_view, unfinished_items
    from ...engine.jobs import JOBS
    from ...present.html import message_bundle
    from ...present.live import CellView

    check_var(options.var)
    store = face.store()
    items: list[Item]
    if options.resend_lost and not options.all:
        raise errors.MagicUsageError("--resend-lost goes with --all")
    if options.all:
        if options.operation_id:
            raise errors.MagicUsageError("give an operation id or --all, not both")
        busy = JOBS.busy_keys()
        items = await asyncio.to_thread(lambda: unfinished_items(store, busy, resend_lost=options.resend_lost))
        lost = [] if options.resend_lost else await asyncio.to_thread(lost_answers, store, busy)
        if lost:
            face.show(message_bundle(
                f"{len(lost)} Images API request{'s' if len(lost) > 1 else ''} went out and the answer was lost: "
                "left alone (the service keeps nothing to collect, and sending again may bill twice); "
                "`%yandexart resume --all --resend-lost` sends them again.", "warning"))
        if not items:
            here = await asyncio.to_thread(lambda: sum(r.idempotency_key in busy for r in store.unsent()))
            many = here > 1
            face.show(message_bundle(f"Nothing to resume: {here} generation{'s' if many else ''} still on "
                                     f"{'their' if many else 'its'} way in this kernel arrive{'' if many else 's'} on "
                                     f"{'their' if many else 'its'} own." if here else
                                     "Nothing pending: every recorded generation was collected."))
            return
        resent = sum(1 for item in items if isinstance(item, Intent) and item.resend and item.request.api != "images")
        if resent:
            face.show(message_bundle(
                f"{resent} generation{'s' if resent > 1 else ''} had a start request out when its kernel stopped, "
                "with no answer recorded: re-sent with the same Idempotency-Key. The service deduplicates on it, "
                "but it may or may not have generated (and billed) such an image twice.", "warning"))
    elif options.operation_id:
        items = [options.operation_id]
    else:
        raise errors.MagicUsageError("%yandexart resume: give an operation_id, or --all")
    if options.out:
        check_pattern(options.out, len(items))
    status = BatchStatus(len(items))
    batch = prepare(store, Batch(items, timeout=options.timeout, out=options.out), status)
    view = CellView(status, errors_in_place=options.all, inline=face.settings.inline)
    try:
        images = await run_in_view(face.client(), store, batch, view, status=status)
    except errors.BatchError as exc:
        from ...media.image import ImageSet

        face.set_result(ImageSet(exc.images), options.var)
        if not options.all:
            raise
        return
    face.set_result(images if options.all else images[0], options.var)
