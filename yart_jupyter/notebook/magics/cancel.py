"""``%yandexart cancel [JOB|OP|all]``: stop background jobs and ask the server to stop their operations."""

from __future__ import annotations

from argparse import Namespace

from ...core.errors import MagicUsageError
from .face import Face
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart cancel", "Cancel running background jobs, and their operations where the server allows.")
    p.add_argument("target", nargs="?", default="all", metavar="JOB|OP|all",
                   help="a job id (j1), an operation id it started, or all (the default)")
    return p


async def handle(face: Face, options: Namespace) -> None:
    from ...engine import server_canceller
    from ...engine.jobs import JOBS
    from ...present.html import message_bundle

    jobs = JOBS.find(options.target)
    if not jobs and options.target == "all":
        face.show(message_bundle("No running jobs."))
        return
    if not jobs:
        raise MagicUsageError(f"no running job or operation {options.target!r}; see %yandexart jobs", hint="")
    pending = [op for job in jobs for op in job.status.pending_ids]
    cancelled = await JOBS.cancel(jobs, cancel_remote=server_canceller(face.client(), face.store()))
    remote = f"; server-side cancel confirmed for {', '.join(cancelled)}" if cancelled else ""
    kept = [f"{op} goes on: {', '.join(job.id for job in others)} waits for it too"
            for op in pending if (others := JOBS.wanted(op, besides=jobs))]
    arriving = [picture for job in jobs for picture in job.status.arriving.values()]
    if arriving:  # an Images API request out is billed: its picture is received and kept, not dropped
        come = "come" if len(arriving) > 1 else "comes"
        kept.append(f"{', '.join(arriving)} (Images API, already paid for) still {come} and will be in the store "
                    "(%yandexart history)")
    face.show(message_bundle(f"Cancelled {', '.join(j.id for j in jobs)}{remote}."
                             + "".join(f" {line}." for line in kept)))
