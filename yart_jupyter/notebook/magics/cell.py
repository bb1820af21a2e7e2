"""``%%yandexart [options]`` with the prompt as the cell body, and its one-line form."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import math
import re
from argparse import Namespace
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core import errors
from ...core.prompt import expand, parse_body, parse_seeds
from ...core.request import ASPECT_PRESETS, GenerationRequest, Message, random_seed, validate_timeout
from ...core.typos import closest_name
from ...experiments.contact_sheet import SHEET_TYPES, sheet_format
from ...experiments.experiment import Experiment
from ...experiments.sweep import Axis, SweepError, Template, check_axes, parse_axis, placeholders
from ...experiments.sweep import expand as expand_sweep
from ...media.outputs import check_new_file, check_pattern
from .face import Face, check_var
from .parsers import Parser, split

if TYPE_CHECKING:
    from ...core.status import BatchStatus
    from ...engine import Batch, BatchView
    from ...media.image import GeneratedImage, ImageSet

BODY = """\
The cell body is the prompt. Its lines are joined with spaces into one message; a line `---`
starts another message and `--- W` one with weight W (default 1; the body may begin with such
a line). {name} inserts a notebook variable or expression; {{ and }} are literal braces; --raw
turns that off. At most 500 characters per message. The cell's value (_) is the GeneratedImage,
or a list of them for several seeds; every generation is recorded in the local store.

A sweep: --vary NAME=V1|V2|... (up to three axes, the seeds counting as one) makes one picture
per combination; {NAME} is filled in the body (also in a `--- {NAME}` weight) and in --aspect,
--mime, --model and --out. All cells share their seeds, so a column changes one thing only. The
cell's value is then an Experiment: exp["oil painting", 3], .records(), .save_grid(path)."""


def parser() -> Parser:
    presets = ", ".join(f"{name} ({w}:{h})" for name, (w, h) in ASPECT_PRESETS.items())
    p = Parser("%%yandexart", "Generate images with YandexART.\n\n" + BODY)
    p.add_argument("--seed", nargs="+", metavar="N", help="one image per seed; ranges A-B allowed (--seed 1 5-8)")
    p.add_argument("-n", "--count", type=int, metavar="N", dest="count",
                   help="N images with random seeds (each seed is reported); on a model without seeds, N samples "
                        "(#1…#N); -n as in the Images API's n")
    p.add_argument("--aspect", metavar="W:H", help=f"whole numbers from 1:4 to 4:1, or a preset: {presets}; "
                                                   "default: the default_aspect setting (1:1)")
    p.add_argument("--mime", metavar="TYPE", help="image/jpeg or image/png; default: the mime_type setting")
    p.add_argument("--model", metavar="NAME", help="a model of %%yandexart models (aliceai-image-art-3.0, "
                                                   "yandex-art/latest) or a URI; images:NAME for an unlisted model "
                                                   "of the Images API; default: the model_uri setting")
    p.add_argument("--allow-weights", action="store_true", dest="allow_weights",
                   help="run a sweep whose pictures differ only by weights (the service documents weights as not "
                        "supported, so it most likely pays for identical pictures)")
    p.add_argument("--vary", action="append", metavar="NAME=V1|V2",
                   help="an axis of a sweep: a picture per value, {NAME} filled in the prompt and options; "
                        "NAME={list} takes a notebook list; repeat for up to three axes (seeds count as one)")
    p.add_argument("--dry-run", action="store_true", dest="dry_run",
                   help="show the plan (each prompt, seed and aspect, how many generations, how many the store "
                        "has, the quota it takes) and send nothing")
    p.add_argument("--out", metavar="PATTERN", help="save to files; {seed}, {n}, {op} and a sweep's axes are filled "
                                                    "in (a name ending in / is a folder: yandexart-SEED.jpg in it); "
                                                    "folders are created; an existing file is never overwritten")
    p.add_argument("--grid-out", metavar="FILE", dest="grid_out",
                   help="also write a sweep's grid as one labelled picture, of the type its name says")
    p.add_argument("--var", metavar="NAME", help="also store the result in the variable NAME")
    p.add_argument("--background", action="store_true",
                   help="return at once; the result replaces the status line when ready (see jobs)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="give up waiting after S seconds (the operation id is reported)")
    p.add_argument("--no-cache", action="store_true", dest="no_cache",
                   help="generate anew even when the store has this exact request (same prompt, seed, aspect, "
                        "type and model); without it such a request is answered from the store, with no API call, "
                        "and one on its way (another run's) is collected, not sent again")
    p.add_argument("--raw", action="store_true", help="do not expand {...} in the prompt")
    return p


#: The most generations --dry-run lists (a plan far over max_images is refused without one).
PLAN_LIMIT = 10_000


@dataclass
class Plan:
    """A validated cell: its requests and options; nothing has been sent or shown.

    ``experiment``: a sweep's grid (None for a plain cell); ``fields``: each request's axis values
    and seed, as ``--out`` may name them.
    """

    requests: list[GenerationRequest]
    options: Namespace
    single: bool
    experiment: Experiment | None = None
    fields: list[dict[str, str]] = dataclasses.field(default_factory=list)
    over_limit: str | None = None


def _seeds(options: Namespace, limit: int, seedless: str | None = None) -> tuple[list[Any], set[int]]:
    """The cell's seeds, and which of them were drawn at random (a sweep shares them across its cells).
    On a model without seeds (``seedless`` names it) they are samples, ``#1``…``#N``."""
    if options.seed is not None and options.count is not None:
        raise errors.MagicUsageError("give either --seed or --count, not both")
    if options.count is not None and not 1 <= options.count <= limit:
        raise errors.RequestValidationError(
            "--count", options.count, f"must be from 1 to {limit} (the max_images setting)")
    if seedless is not None:
        if options.seed is not None:
            raise errors.RequestValidationError(
                "--seed", " ".join(options.seed), f"{seedless} takes no seed (every request is a new picture): "
                f"ask for N samples with --count N")
        return [f"#{n}" for n in range(1, (options.count or 1) + 1)], set()
    if options.seed is not None:
        return list(parse_seeds(options.seed, limit)), set()
    drawn: list[int] = []
    for _ in range(options.count or 1):
        drawn.append(random_seed(drawn))
    return drawn, set(drawn)


def plan(face: Face, line: str, body: str) -> Plan:
    """Parse and validate everything before anything is sent (every combination of a sweep too)."""
    options = parser().parse_args(split(line))
    limit = face.settings.max_images
    model = face.settings.model(options.model) if "{" not in (options.model or "") else None
    seedless = model.spec.name if model is not None and not model.spec.seeds else None
    seeds, drawn = _seeds(options, limit, seedless)
    validate_timeout(options.timeout, "--timeout")  # here too, to name the option
    check_var(options.var)
    axes = [parse_axis(definition, face.user_ns) for definition in options.vary or []]
    if options.grid_out and not axes:
        raise errors.MagicUsageError("--grid-out draws a sweep's grid: add a --vary axis (or use .save() per image)")
    if options.grid_out:
        check_new_file("--grid-out", options.grid_out)
        if sheet_format(Path(options.grid_out)) is None:
            raise errors.RequestValidationError("--grid-out", options.grid_out, SHEET_TYPES)
    template = Template(body, {"--aspect": options.aspect, "--mime": options.mime, "--model": options.model,
                               "--out": options.out}, seeds, raw=options.raw,
                        seed_axis="sample" if seedless else "seed")
    over_limit = None
    if axes:
        _check_body_names(body, axes, face.user_ns, options.raw)
        check_axes(axes, template)
        size = math.prod(len(axis.values) for axis in axes) * len(seeds)
        if size > limit:
            shape = " × ".join(f"{a.name} {len(a.values)}" for a in axes)
            shape += f" × seed {len(seeds)}" if len(seeds) > 1 else ""
            over_limit = (f"this sweep makes {size} generations ({shape}); the limit is {limit} (max_images): "
                          f"raise it with %config YandexArt.max_images = {size}")
            if not options.dry_run or size > PLAN_LIMIT:
                raise SweepError(over_limit + ", or see the plan with --dry-run", hint="")
    expanded: dict[str, tuple[Message, ...]] = {}

    def build(text: str, values: Mapping[str, str | None], seed: int | None) -> GenerationRequest:
        if text not in expanded:
            pieces = parse_body(text)
            if not options.raw:
                pieces = [(expand(piece, face.user_ns), weight) for piece, weight in pieces]
            expanded[text] = tuple(Message(piece, weight) for piece, weight in pieces)
        if seed in drawn and not face.settings.model(values["--model"]).spec.seeds:
            seed = None  # a drawn seed on a model without seeds (a --vary over models): nothing to send
        return face.settings.request(list(expanded[text]), seed=seed, aspect=values["--aspect"],
                                     mime_type=values["--mime"], model_uri=values["--model"])

    sweep = expand_sweep(axes, template, build)
    requests = [dataclasses.replace(cell.request, seed_was_given=False) if cell.request.seed in drawn
                else cell.request for cell in sweep]
    check_weights(requests, allowed=options.allow_weights)
    names = [axis.name for axis in sweep.axes]
    fields = [{**{name: str(value) for name, value in zip(names, cell.key, strict=True)},
               "seed": str(request.seed) if request.seed is not None else ""}
              for cell, request in zip(sweep, requests, strict=True)]
    if options.out:
        check_pattern(options.out, len(requests), fields, mime_types={r.mime_type for r in requests})
    experiment = None
    if axes:
        experiment = Experiment.from_sweep(sweep, notebook=face.notebook_name())
        for slot, request in zip(experiment.slots, requests, strict=True):
            slot.request = request
    return Plan(requests, options, single=len(requests) == 1 and not axes, experiment=experiment, fields=fields,
                over_limit=over_limit)


def check_weights(requests: list[GenerationRequest], *, allowed: bool) -> None:
    """Refuse pictures that differ only by their weights: the service documents weights as not supported,
    so such a sweep most likely pays for identical pictures (``allowed``, ``--allow-weights``, runs it
    anyway); on a model that takes one prompt no weight is even sent, and nothing runs it."""
    from ...core.models import WEIGHTS_UNSUPPORTED

    def same(request: GenerationRequest) -> tuple[Any, ...]:  # everything but the weights
        return (tuple(m.text for m in request.messages), request.seed, str(request.aspect), request.mime_type,
                request.model_uri)

    groups: dict[tuple[Any, ...], set[tuple[float, ...]]] = {}
    for request in requests:
        groups.setdefault(same(request), set()).add(tuple(m.weight for m in request.messages))
    unsent = sorted({r.model.name for r in requests if not r.model.messages and len(groups[same(r)]) > 1})
    if unsent:
        raise SweepError(f"this sweep's cells differ only by their weights, and {', '.join(unsent)} takes one prompt "
                         "without weights: every cell would send the same request")
    if not allowed and any(len(weights) > 1 for weights in groups.values()):
        raise SweepError(f"this sweep's pictures differ only by their weights, and {WEIGHTS_UNSUPPORTED}: it would "
                         "most likely pay for identical pictures; add --allow-weights to run it anyway", hint="")


def _check_body_names(body: str, axes: list[Axis], namespace: Mapping[str, Any], raw: bool) -> None:
    """A ``{NAME}`` of the body that is neither an axis nor a notebook name is a typo: say so first."""
    if raw:
        return
    names = {axis.name for axis in axes}
    for name in sorted(placeholders(body) - names):
        if name not in namespace and not hasattr(builtins, name):
            near = closest_name(name, [*names, *namespace])
            meant = f" (did you mean {{{near}}}?)" if near else ""
            raise SweepError(f"the prompt mentions {{{name}}}, which is neither an axis "
                             f"({', '.join(sorted(names))}) nor a notebook variable{meant}")


async def handle(face: Face, line: str, body: str) -> None:
    """Run a cell: wait for it (an interrupt is one line naming what still runs), or in the background."""
    from ...core.status import BatchStatus
    from ...engine import Batch, prepare, wait_for_starts
    from ...engine.jobs import JOBS
    from ...present.live import CellView

    cell = plan(face, line, body)
    if cell.options.dry_run:
        show_plan(face, cell)
        return
    synchronous = sorted({r.model.name for r in cell.requests if r.api == "images"})
    if cell.options.timeout is not None and synchronous:
        from ...present.html import message_bundle

        face.show(message_bundle(f"--timeout does not cut short {', '.join(synchronous)}: the Images API answers "
                                 "in one request, billed when it arrives, and a request cut short would be a "
                                 "picture paid for and lost", "warning"))
    status = BatchStatus(len(cell.requests))
    batch = prepare(face.store(), Batch(cell.requests, timeout=cell.options.timeout,
                                        use_cache=not cell.options.no_cache, out=cell.options.out,
                                        reuse_samples=face.settings.reuse_samples, hint_reuse=True,
                                        notebook=face.notebook_name(), fields=cell.fields), status)
    view: BatchView
    if cell.experiment is not None:
        from ...experiments.grid import GridView

        record_experiment(face, cell.experiment, batch)
        view = GridView(cell.experiment, status, errors_in_place=cell.options.background,
                        inline=face.settings.inline, grid_out=cell.options.grid_out)
    else:
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


def show_plan(face: Face, cell: Plan) -> None:
    """``--dry-run``: the plan as a table; nothing is recorded or sent."""
    from ...experiments.dry_run import dry_run

    face.show(dry_run(face.store(), face.settings, cell.requests, experiment=cell.experiment,
                      no_cache=cell.options.no_cache, limit_note=cell.over_limit))


def record_experiment(face: Face, experiment: Experiment, batch: Batch) -> None:
    """Keep the sweep in the store before anything is sent: each cell names its generation."""
    from ...engine import Cached, Intent

    references = []
    for item in batch.items:
        if isinstance(item, Intent):
            references.append(item.key)
        elif isinstance(item, Cached):
            references.append(item.record.operation_id)
        else:
            references.append(str(item))
    face.store().record_experiment(experiment.to_record(references))


async def execute(
    face: Face, batch: Batch, view: BatchView, status: BatchStatus, cell: Plan, *, background: bool
) -> GeneratedImage | ImageSet | Experiment:
    """Run the batch through the engine and keep the result: ``--var``, and ``_`` for a waiting cell
    (a background job's cell has ended, so it leaves ``_`` to whatever ran since). A partial
    result is kept too, before the error is raised; a sweep's result is its Experiment."""
    from ...engine import run_in_view
    from ...media.image import ImageSet

    def keep(value: GeneratedImage | ImageSet | Experiment) -> None:
        if background:
            if cell.options.var:
                face.user_ns[cell.options.var] = value
        else:
            face.set_result(value, cell.options.var)

    try:
        images = await run_in_view(face.client(), face.store(), batch, view, status=status)
    except errors.BatchError as exc:
        keep(cell.experiment if cell.experiment is not None else ImageSet(exc.images))
        raise
    result: GeneratedImage | ImageSet | Experiment = (
        cell.experiment if cell.experiment is not None else images[0] if cell.single and images else images)
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
