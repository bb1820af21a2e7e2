"""The ``yart`` command: the notebook's engine, store and settings in a terminal. Here the commands
that generate (generate, rerun, batch, resume, status) and the one entry; those that only read or
tidy the store are in :mod:`.records`, the exit codes in :mod:`.exits` (130 when interrupted: every
started operation stays pending in the store, and ``yart resume --all`` collects it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..core import errors
from ..core.config import Settings
from ..core.prompt import parse_body, parse_seeds
from ..core.status import CLI_COLLECT, BatchStatus
from .exits import BROKEN_PIPE, FAILED, INTERRUPTED, INVALID, OK
from .options import parser
from .progress import Progress
from .records import COMMANDS

#: How long a command interrupted while Images API requests are out waits for their answers (each
#: request has its own timeout too): they are billed, and the service keeps nothing to collect.
IMAGES_WAIT = 180.0

if TYPE_CHECKING:
    from ..engine import Batch
    from ..media.image import GeneratedImage, ImageSet
    from ..store import Store


async def _run_shown(settings: Settings, store: Store, batch: Batch, status: BatchStatus | None = None) -> ImageSet:
    """A batch run with its progress line on stderr, and under it, once it ends, what the models
    could not do as asked (the notes): ``yart generate``'s and ``yart rerun``'s one way to run."""
    from ..clients.shared import shared_client
    from ..engine import CallbackView, run_in_view

    progress = Progress(sys.stderr)
    notes: list[str] = []
    try:
        return await run_in_view(shared_client(settings), store, batch, CallbackView(progress, CLI_COLLECT,
                                                                                      notes.append), status=status)
    finally:
        progress.end()
        for note in notes:
            sys.stderr.write(f"{note}\n")


async def _generate(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """One picture (or one per ``--seed``, or ``--count N``), with its progress on stderr; each saved
    as it is listed. Of several, the pictures that arrived are saved even when others failed (exit
    code 1); one picture that fails raises its own error."""
    from ..engine import Batch
    from ..media.outputs import check_pattern, save_all
    from ..store import get_store

    count = options.count if options.count is not None else 1
    if options.count is not None and options.seed is not None:
        raise errors.InvalidRequestError("give either --seed or --count, not both (--count draws a seed per picture)")
    if not 1 <= count <= settings.max_images:
        raise errors.RequestValidationError("--count", count, f"must be from 1 to {settings.max_images} "
                                            "(the max_images setting, YANDEXART_MAX_IMAGES)")
    words = [word for given in options.seed or () for word in given.split()]  # --seed 1,5-8 --seed 9
    if options.seed is not None and not "".join(words).strip(","):  # an empty variable in a script
        raise errors.RequestValidationError("--seed", " ".join(options.seed), "names no seed (leave it out for a "
                                            "random one)")
    seeds = parse_seeds(words, settings.max_images) if words else [None] * count
    prompt = parse_body(options.prompt)  # as a cell's body: a line `--- W` starts a message of weight W
    requests = [settings.request(prompt, seed=seed, aspect=options.aspect, mime_type=options.mime,
                                 model_uri=options.model) for seed in seeds]
    pattern = options.out or ("yandexart-{seed}" if requests[0].seed is not None else "yandexart-{op}")
    check_pattern(pattern, len(requests), option="-o", mime_types={requests[0].mime_type})
    if options.dry_run:
        from ..experiments.dry_run import dry_run

        out.write(dry_run(get_store(settings.store_location), settings, requests,
                          no_cache=options.no_cache)["text/plain"] + "\n")
        return OK
    failures: list[errors.YandexArtError] = []
    status = BatchStatus(len(requests))
    try:
        images = list(await _run_shown(settings, get_store(settings.store_location), Batch(
            requests, use_cache=not options.no_cache, reuse_samples=settings.reuse_samples, hint_reuse=True),
            status))
    except errors.BatchError as exc:
        images, failures = exc.images, exc.failures
    except asyncio.CancelledError:  # Ctrl-C: a picture paid for and still coming is saved as asked, then
        _save_when_in(status, pattern, out)
        raise
    paths = save_all(pattern, [(n, image, {}) for n, image in enumerate(images, 1)])
    for path, image in zip(paths, images, strict=True):
        out.write(f"{path}  {image.caption()}\n")
    for line in errors.failure_lines(failures):  # a refusal of every picture is said once
        out.write(f"failed: {line}\n")
    return FAILED if failures else OK


def _save_when_in(status: BatchStatus, pattern: str, out: TextIO) -> None:
    """``yart generate`` was interrupted while Images API requests were out: each picture, once in,
    is saved under the pattern as its place in the command would have been (the command waits for it)."""
    from ..engine.arrivals import ARRIVALS
    from ..media.outputs import save_all

    for n, key in enumerate(status.keys, 1):
        picture = status.arriving.get(key)
        if picture is None:
            continue

        async def save(image: GeneratedImage, n: int = n) -> None:
            try:
                [path] = await asyncio.to_thread(save_all, pattern, [(n, image, {})])
            except errors.StorageError as exc:
                sys.stderr.write(f"{exc}\n")
                return
            out.write(f"{path}  {image.caption()}\n")

        ARRIVALS.then(picture, save)


async def _rerun(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """A picture made again from its recipe (a file's, a history entry's, an operation's), saved, and
    a line on whether its pixels match the old ones; with ``--check``, made anew and the exit code
    says it (0 identical, 1 different), for a script that checks a figure still reproduces."""
    from ..core.provenance import ProvenanceError
    from ..engine import Batch
    from ..experiments.rerun import CLI, RerunError, find_origin, judged, request_of
    from ..media.outputs import check_pattern, save_all
    from ..store import get_store

    store = get_store(settings.store_location)
    try:
        origin = find_origin(store, options.source, "yart rerun", CLI)
    except (ProvenanceError, RerunError) as exc:  # a file with no recipe, a source naming nothing: exit code 2
        raise errors.InvalidRequestError(exc.message) from None
    if options.check and origin.recipe.get("seed") is None:
        raise errors.InvalidRequestError("yart rerun --check: the picture's model takes no seed, so no request "
                                         "makes the same picture again; nothing was sent")
    if options.check and origin.before is None:
        raise errors.InvalidRequestError(f"yart rerun --check: there is no picture to compare with ({origin.missing});"
                                         " nothing was sent")
    request = request_of(settings, origin.recipe)
    source = Path(options.source).expanduser()
    pattern = options.out or (f"{source.stem}-rerun" if source.exists() else
                              "yandexart-{seed}" if request.seed is not None else "yandexart-{op}")
    check_pattern(pattern, 1, option="-o", mime_types={request.mime_type})
    fresh = options.no_cache or options.check  # a check answered from the store would prove nothing
    image = (await _run_shown(settings, store, Batch([request], use_cache=not fresh)))[0]
    path = save_all(pattern, [(1, image, {})])[0]
    rerun = judged(origin, image)
    out.write(f"{path}  {image.caption()}\n{rerun.verdict}\n")
    return FAILED if options.check and not rerun.same else OK


async def _batch(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    from ..batches import load_rows, plan_table, preview_table, row_lines, run_table
    from ..clients.shared import shared_client
    from ..store import get_store

    seed: int | str | None = options.seed
    if isinstance(seed, str) and "{" not in seed:
        seed = int(seed) if seed.isdigit() else seed
    batch = plan_table(load_rows(options.table), settings, prompt=options.prompt, seed=seed, aspect=options.aspect,
                 mime_type=options.mime, model_uri=options.model, out=options.out, skip_invalid=options.skip_invalid)
    if options.dry_run:
        preview = preview_table(batch, get_store(settings.store_location), settings, resend_lost=options.resend_lost)
        out.write("\n".join(preview.lines()) + "\n")
        return OK
    for line in row_lines(batch.rows, ("invalid",)):
        out.write(f"{line} (skipped)\n")
    status = BatchStatus(len(batch.valid))
    status.show_rate = True
    progress = Progress(sys.stderr)
    try:
        result = await run_table(shared_client(settings), get_store(settings.store_location), settings, batch, status,
                                 on_update=progress, resend_lost=options.resend_lost)
    finally:
        progress.end()
    for line in row_lines(result.rows):  # a reason many rows met, once
        out.write(f"{line}\n")
    out.write(result.summary() + "\n")
    return OK if result.left == 0 else FAILED


async def _status(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """The setup report; exit code 2 when something stands in the way (scripts can test it)."""
    from ..engine.setup import check_setup

    report = await check_setup(settings)
    out.write(f"{report}\n")
    return OK if report.ready else INVALID


async def _resume(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    from ..clients.shared import shared_client
    from ..engine import lost_answers, run_batch, unfinished_items
    from ..store import get_store

    store = get_store(settings.store_location)
    if options.resend_lost and not options.all:
        raise errors.MagicUsageError("yart resume: --resend-lost goes with --all", hint="")
    if options.all and options.operation_id:
        raise errors.MagicUsageError("yart resume: give an operation id or --all, not both", hint="")
    if options.all:
        items: list[Any] = unfinished_items(store, resend_lost=options.resend_lost)
        lost = [] if options.resend_lost else lost_answers(store)
        if lost:
            out.write(f"{len(lost)} Images API request{'s' if len(lost) > 1 else ''} sent with the answer lost "
                      "left alone (sending again may bill twice): yart resume --all --resend-lost sends them\n")
    elif options.operation_id:
        items = [options.operation_id]
    else:
        raise errors.MagicUsageError("yart resume: give an operation id, or --all", hint="")
    if not items:
        out.write("nothing to resume\n")
        return OK
    images, failures = await run_batch(shared_client(settings), items, store=store)
    for number, image in enumerate(images, 1):
        saved = f"{image.save(options.out.format(seed=image.seed, n=number, op=image.operation_id))}  " \
            if options.out else ""
        out.write(f"{saved}{image.caption()}\n")
    for failure in failures:
        out.write(f"✖ {failure}\n")
    return FAILED if failures else OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code says how it went (see the module's docstring)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["emulator"]:  # its own options, parsed by the emulator
        from ..emulator.__main__ import main as emulator

        emulator(arguments[1:], prog="yart emulator")
        return OK
    options = parser().parse_args(arguments)
    import os

    from ..core.settings import current

    out = sys.stdout
    try:
        if options.store:  # this process's store, for every face the command uses
            os.environ["YANDEXART_STORE"] = options.store
        settings = current()
        if options.command in COMMANDS:
            return COMMANDS[options.command](settings, options, out)
        runner = {"generate": _generate, "rerun": _rerun, "batch": _batch, "resume": _resume,
                  "status": _status}[options.command]
        return asyncio.run(_with_cleanup(runner(settings, options, out)))
    except (KeyboardInterrupt, asyncio.CancelledError):  # on 3.10, a first Ctrl-C ends as a cancellation
        again = " (or run the same yart batch again)" if options.command == "batch" else ""
        sys.stderr.write("\ninterrupted: every started operation stays pending in the store; "
                         f"collect them with 'yart resume --all'{again}\n")
        return INTERRUPTED
    except (errors.InvalidRequestError, errors.MagicUsageError, errors.ConfigurationError) as exc:
        sys.stderr.write(f"{_named(exc)}\n")
        return INVALID
    except errors.YandexArtError as exc:
        sys.stderr.write(f"{_named(exc)}\n")
        return FAILED
    except FileExistsError as exc:
        sys.stderr.write(f"yart: {exc}\n")
        return INVALID


def _named(exc: BaseException) -> str:
    """An error's line, after the command's name once (``yart resume: ...`` says it already)."""
    text = str(exc)
    return text if text.startswith("yart ") else f"yart: {text}"


async def _with_cleanup(work: Any) -> int:
    from ..clients.shared import close_shared_clients

    _cancel_on_first_interrupt()
    try:
        return int(await work)
    except asyncio.CancelledError:  # Ctrl-C: the command is cancelled first, as asyncio.run does from 3.11
        await _keep_what_was_paid_for()
        raise
    finally:
        await close_shared_clients()


def _cancel_on_first_interrupt() -> None:
    """On Python 3.10, make a first Ctrl-C cancel the command (as ``asyncio.run`` does from 3.11, where
    a KeyboardInterrupt raised in the loop would drop every task at once); a second one interrupts."""
    if sys.version_info >= (3, 11) or sys.platform == "win32":
        return
    import signal

    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    if task is None:
        return

    def first() -> None:
        loop.remove_signal_handler(signal.SIGINT)  # back to Python's own: the next Ctrl-C interrupts
        task.cancel()

    with contextlib.suppress(ValueError, RuntimeError):  # not the main thread: Ctrl-C is not ours to take
        loop.add_signal_handler(signal.SIGINT, first)


async def _keep_what_was_paid_for() -> None:
    """Ctrl-C while Images API requests were out: they are billed, and the service keeps nothing, so
    their answers are awaited and kept in the store (a second Ctrl-C gives them up)."""
    from ..engine.arrivals import ARRIVALS

    arriving = ARRIVALS.arriving()
    if not arriving:
        return
    what, them = (f"the {len(arriving)} Images API pictures", "them") if len(arriving) > 1 else (
        "the Images API picture", "it")
    sys.stderr.write(f"\ninterrupted: waiting for {what} already paid for, to keep {them} (Ctrl-C again gives "
                     f"{them} up)\n")
    left = {a.picture_id for a in await ARRIVALS.wait_all(IMAGES_WAIT)}
    kept = [a for a in arriving if a.picture_id not in left and not a.task.cancelled() and a.task.exception() is None]
    unsaved = [a.picture_id for a in kept if not a.delivered]
    if kept:
        hint = f" ('yart resume {unsaved[0]} -o FILE' saves it)" if unsaved else ""
        sys.stderr.write(f"kept in the store: {', '.join(a.picture_id for a in kept)}{hint}\n")


def entry() -> None:
    """The console script. Output cut short by its reader (``yart history | head``) ends quietly
    with 141, as a command killed by SIGPIPE does, not with a traceback."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit fails no more
        code = BROKEN_PIPE
    sys.exit(code)
