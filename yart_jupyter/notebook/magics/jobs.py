"""``%yandexart jobs``: the background jobs of this kernel, running first."""

from __future__ import annotations

from argparse import Namespace

from .face import Face
from .parsers import Parser


def parser() -> Parser:
    return Parser("%yandexart jobs", "List this kernel's background jobs: running ones, then the last finished.")


async def handle(face: Face, options: Namespace) -> None:
    from ...engine.jobs import JOBS
    from ...present.html import message_bundle, text_bundle

    rows = [f"{j.id:<4} {j.state:<9} {j.status.text()}  — {j.description}" for j in JOBS.running()]
    rows += [f"{f.id:<4} {f.state:<9} {f.summary}  — {f.description}" for f in list(JOBS.finished)[-10:]]
    face.show(text_bundle(rows) if rows else message_bundle("No background jobs in this kernel."))
