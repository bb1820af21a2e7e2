"""``%%yandexart [options]`` with the prompt as the cell body, and its one-line form."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import errors
from ..outputs import check_pattern
from ..prompt import expand, parse_body, parse_seeds
from ..request import ASPECT_PRESETS, GenerationRequest, Message, random_seed
from .face import Face, check_var
from .parsers import Parser, split

if TYPE_CHECKING:
    from ..display import CellView
    from ..engine import Batch
    from ..image import GeneratedImage, ImageSet
    from ..status import BatchStatus

BODY = """\
The cell body is the prompt. Its lines are joined with spaces into one message; a line `---`
starts another message and `--- W` one with weight W (default 1; the body may begin with such
a line). {name} inserts a notebook variable or expression; {{ and }} are literal braces; --raw
turns that off. At most 500 characters per message. The cell's value (_) is the GeneratedImage,
or a list of them for several seeds; every generation is recorded in the local store."""


def parser() -> Parser:
    presets = ", ".join(f"{name} ({w}:{h})" for name, (w, h) in ASPECT_PRESETS.items())
    p = Parser("%%yandexart", "Generate images with YandexART.\n\n" + BODY)
    p.add_argument("--seed", nargs="+", metavar="N", help="one image per seed; ranges A-B allowed (--seed 1 5-8)")
    p.add_argument("--count", type=int, metavar="N", help="N images with random seeds (each seed is reported)")
    p.add_argument("--aspect", metavar="W:H", help=f"whole numbers from 1:4 to 4:1, or a preset: {presets}; "
                                                   "default: the default_aspect setting (1:1)")
    p.add_argument("--mime", metavar="TYPE", help="image/jpeg or image/png; default: the mime_type setting")
    p.add_argument("--model", metavar="URI", help="model URI; default: art://<folder>/yandex-art/latest")
    p.add_argument("--out", metavar="PATTERN", help="save to files; {seed}, {n} and {op} are filled in; folders "
                                                    "are created; an existing file is never overwritten")
    p.add_argument("--var", metavar="NAME", help="also store the result in the variable NAME")
    p.add_argument("--background", action="store_true",
                   help="return at once; the result replaces the status line when ready (see jobs)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="give up waiting after S seconds (the operation id is reported)")
    p.add_argument("--no-cache", action="store_true", dest="no_cache",
                   help="generate anew even when the store has this exact request (same prompt, seed, aspect, "
                        "type and model); without it such a request is answered from the store, with no API call")
    p.add_argument("--raw", action="store_true", help="do not expand {...} in the prompt")
    return p


@dataclass
class Plan:
    """A validated cell: its requests and options; nothing has been sent or shown."""

    requests: list[GenerationRequest]
    options: Any
    single: bool


def plan(face: Face, line: str, body: str) -> Plan:
    """Parse and validate everything before anything is sent."""
    options = parser().parse_args(split(line))
    pieces = parse_body(body)
    if not options.raw:
        pieces = [(expand(text, face.user_ns), weight) for text, weight in pieces]
    messages = [Message(text, weight) for text, weight in pieces]
    limit = face.settings.max_images
    if options.seed is not None and options.count is not None:
        raise errors.MagicUsageError("give either --seed or --count, not both")
    if options.count is not None and not 1 <= options.count <= limit:
        raise errors.RequestValidationError(
            "--count", options.count, f"must be from 1 to {limit} (the max_images setting)")
    seeds: list[int | None]
    seeds = list(parse_seeds(options.seed, limit)) if options.seed is not None else [None] * (options.count or 1)
    if options.timeout is not None and not options.timeout > 0:
        raise errors.RequestValidationError("--timeout", options.timeout, "must be a positive number of seconds")
    check_var(options.var)
    requests = [
        face.settings.request(messages, seed=seed, aspect=options.aspect, mime_type=options.mime,
                              model_uri=options.model)
        for seed in seeds
    ]
    for index, request in enumerate(requests):  # a batch's random seeds differ from each other
        others = {r.seed for r in requests[:index]}
        if not request.seed_was_given and request.seed in others:
            requests[index] = dataclasses.replace(request, seed=random_seed(others))
    if options.out:
        check_pattern(options.out, len(requests))
    return Plan(requests, options, single=len(requests) == 1)


async def run(face: Face, line: str, body: str) -> None:
    """Run a cell: wait for it (an interrupt is one line naming what still runs), or in the background."""
    from ..display import CellView
    from ..engine import Batch, prepare, wait_for_starts
    from ..jobs import JOBS
    from ..status import BatchStatus

    cell = plan(face, line, body)
    status = BatchStatus(len(cell.requests))
    batch = prepare(face.store(), Batch(cell.requests, timeout=cell.options.timeout,
                                        use_cache=not cell.options.no_cache, out=cell.options.out,
                                        notebook=face.notebook_name()), status)
    view = CellView(status, errors_in_place=cell.options.background, inline=face.settings.inline)
    if cell.options.background:
        count = len(cell.requests)
        description = f"{count} image{'s' if count > 1 else ''}: {cell.requests[0].prompt[:40]}"
        job = JOBS.submit(execute(face, batch, view, status, cell, background=True), description, status)
        face.set_result(job)
        await wait_for_starts(status)  # so a blocking next cell cannot hold the start requests back
        return
    try:
        await execute(face, batch, view, status, cell, background=False)
    except asyncio.CancelledError:
        message, hint = status.interrupted_text()
        raise errors.GenerationInterrupted(message, hint=hint or None) from None


async def execute(
    face: Face, batch: Batch, view: CellView, status: BatchStatus, cell: Plan, *, background: bool
) -> GeneratedImage | ImageSet:
    """Run the batch through the engine and keep the result: ``--var``, and ``_`` for a waiting cell
    (a background job's cell has ended, so it leaves ``_`` to whatever ran since). A partial
    result is kept too, before the error is raised."""
    from ..engine import run as run_batch
    from ..image import ImageSet

    def keep(value: GeneratedImage | ImageSet) -> None:
        if background:
            if cell.options.var:
                face.user_ns[cell.options.var] = value
        else:
            face.set_result(value, cell.options.var)

    try:
        images = await run_batch(face.client(), face.store(), batch, view, status=status)
    except errors.BatchError as exc:
        keep(ImageSet(exc.images))
        raise
    result: GeneratedImage | ImageSet = images[0] if cell.single and images else images
    keep(result)
    return result


def split_line(line: str) -> tuple[str, str]:
    """``a cat -- at night --seed 3`` → (``a cat -- at night``, ``--seed 3``): the prompt ends where
    the first option this magic knows begins, so a prompt may contain `` --`` itself."""
    names = sorted(parser().option_names(), key=len, reverse=True)
    pattern = re.compile(r"(?:^|\s)(?:" + "|".join(re.escape(n) for n in names) + r")(?=\s|=|$)")
    match = pattern.search(line)
    if match is None:
        return line.strip(), ""
    return line[:match.start()].strip(), line[match.start():].strip()
