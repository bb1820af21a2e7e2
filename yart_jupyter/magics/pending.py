"""``%yandexart pending``: operations recorded as started and never collected."""

from __future__ import annotations

import asyncio
from typing import Any

from .face import Face
from .parsers import Parser


def parser() -> Parser:
    return Parser("%yandexart pending", "List operations started but never collected (collect: resume --all).")


async def run(face: Face, options: Any) -> None:
    from ..display import message_bundle, records_table
    from ..jobs import JOBS

    records = await asyncio.to_thread(face.store().pending)
    if not records:
        face.show(message_bundle("Nothing pending: every recorded operation was collected."))
        return
    running = {op for job in JOBS.running() for op in job.status.operation_ids}
    face.show(records_table(records, running))
