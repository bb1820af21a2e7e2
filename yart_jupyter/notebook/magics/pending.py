"""``%yandexart pending``: operations recorded as started and never collected."""

from __future__ import annotations

import asyncio
from argparse import Namespace

from .face import Face
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart pending", "List my generations not finished: operations never collected, and "
                                     "generations asked for whose start was never answered (resume --all).")
    p.add_argument("--team", action="store_true",
                   help="everyone's in a team's store (a teammate's are collected only by their id)")
    return p


async def handle(face: Face, options: Namespace) -> None:
    from ...engine.jobs import JOBS
    from ...present.html import message_bundle
    from ...present.records import records_table

    store = face.store()
    records = await asyncio.to_thread(lambda: [*store.pending(team=options.team), *store.unsent(team=options.team)])
    if not records:
        face.show(message_bundle("Nothing pending: every recorded generation was collected."))
        return
    running = {op for job in JOBS.running() for op in job.status.operation_ids}
    running |= {f"intent:{key}" for key in JOBS.busy_keys()}
    face.show(records_table(records, running))
