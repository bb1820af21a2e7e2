"""The ``yart`` command: the notebook's engine, store and settings in a terminal.

Exit codes scripts can test: 0 everything done, 1 some generations failed (or the daily quota left
rows for later), 2 invalid input (nothing was sent), 130 interrupted (every started operation stays
pending in the store: ``yart resume --all`` or the same ``yart batch`` again collects it), 141 its
output's reader stopped reading (``| head``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..core import errors
from ..core.config import Settings
from ..core.prompt import parse_body, parse_seeds
from ..core.status import CLI_COLLECT, BatchStatus
from .options import parser
from .progress import Progress

OK, FAILED, INVALID, INTERRUPTED, BROKEN_PIPE = 0, 1, 2, 130, 141
async def _generate(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """One picture (or one per ``--seed``, or ``--count N``), with its progress on stderr; each saved
    as it is listed. Of several, the pictures that arrived are saved even when others failed (exit
    code 1); one picture that fails raises its own error."""
    from ..clients.shared import shared_client
    from ..engine import Batch, CallbackView, run_in_view
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
    progress = Progress(sys.stderr)
    failures: list[errors.YandexArtError] = []
    notes: list[str] = []  # what the model could not do as asked, said under the progress line
    try:
        images = list(await run_in_view(shared_client(settings), get_store(settings.store_location),
                                        Batch(requests, use_cache=not options.no_cache,
                                              reuse_samples=settings.reuse_samples, hint_reuse=True),
                                        CallbackView(progress, CLI_COLLECT, notes.append)))
    except errors.BatchError as exc:
        images, failures = exc.images, exc.failures
    finally:
        progress.end()
        for note in notes:
            sys.stderr.write(f"{note}\n")
    paths = save_all(pattern, [(n, image, {}) for n, image in enumerate(images, 1)])
    for path, image in zip(paths, images, strict=True):
        out.write(f"{path}  {image.caption()}\n")
    for line in errors.failure_lines(failures):  # a refusal of every picture is said once
        out.write(f"failed: {line}\n")
    return FAILED if failures else OK


async def _rerun(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """A picture made again from its recipe (a file's, a history entry's, an operation's), saved, and
    a line on whether its pixels match the old ones."""
    from ..clients.shared import shared_client
    from ..core.provenance import ProvenanceError
    from ..engine import Batch, CallbackView, run_in_view
    from ..experiments.rerun import find_origin, request_of, verdict
    from ..media.outputs import check_pattern, save_all
    from ..media.pixels import same_pixels
    from ..store import get_store

    store = get_store(settings.store_location)
    try:
        origin = find_origin(store, options.source, "yart")
    except ProvenanceError as exc:  # a file with no recipe: the input, as with exit code 2
        raise errors.InvalidRequestError(exc.message) from None
    request = request_of(settings, origin.recipe)
    source = Path(options.source).expanduser()
    pattern = options.out or (f"{source.stem}-rerun" if source.exists() else
                              "yandexart-{seed}" if request.seed is not None else "yandexart-{op}")
    check_pattern(pattern, 1, option="-o", mime_types={request.mime_type})
    progress = Progress(sys.stderr)
    notes: list[str] = []
    try:
        image = (await run_in_view(shared_client(settings), store, Batch([request], use_cache=not options.no_cache),
                                   CallbackView(progress, CLI_COLLECT, notes.append)))[0]
    finally:
        progress.end()
        for note in notes:
            sys.stderr.write(f"{note}\n")
    path = save_all(pattern, [(1, image, {})])[0]
    same = origin.before is not None and same_pixels(origin.before, image.image_bytes)
    out.write(f"{path}  {image.caption()}\n{verdict(origin, image, same)}\n")
    return OK


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


def _history(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    from ..present.records import filter_words, made_by, why
    from ..store import get_store

    store = get_store(settings.store_location)
    records = store.history(options.n, options.search, options.status, team=options.team)
    numbers = store.numbers(records)  # what `yart rerun #N` names, whatever the filter
    rows = []
    for r in records:
        who = f"  ({made_by(r)})" if made_by(r) else ""
        who += f"  ✖ {why(r)}" if why(r) else ""
        rows.append([f"#{numbers[r.operation_id]}" if r.operation_id in numbers else "",
                     r.submitted_at.astimezone().strftime("%Y-%m-%d %H:%M"), r.status,
                     f"seed {r.seed}" if r.seed is not None else "no seed", r.aspect or "", r.operation_id,
                     f"{r.prompt[:60]}{who}"])
    if not rows:
        asked = filter_words(options.search, options.status)
        out.write(f"no generation matches {asked}\n" if asked else "no generations yet\n")
    widths = [max(len(row[i]) for row in rows) for i in range(6)] if rows else []
    for row in rows:  # aligned columns, the prompt last (it varies most)
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + f"  {row[6]}"
        out.write(line.rstrip() + "\n")
    return OK


def _compare(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """The pictures' parameters side by side, aligned, and what differs from the first."""
    from ..experiments.comparison import CompareError, compare
    from ..store import get_store

    if len(options.sources) < 2:
        raise errors.InvalidRequestError("yart compare needs at least two pictures (operation ids, #N history "
                                         "entries or image files)")
    try:
        lines = compare(*options.sources, store=get_store(settings.store_location)).text().splitlines()
    except CompareError as exc:  # a side that names nothing: the input, as with exit code 2
        raise errors.InvalidRequestError(f"yart compare: {exc}") from None
    rows = [line.split("\t") for line in lines[:-1]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:  # aligned columns, the last left as long as it is
        out.write(("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) +
                   f"  {row[-1]}").rstrip() + "\n")
    out.write(lines[-1] + "\n")
    return OK


def _pending(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    from ..present.records import made_by, pending_state
    from ..store import get_store

    store = get_store(settings.store_location)
    records = store.pending(team=options.team) + store.unsent(team=options.team)
    for r in records:
        out.write(f"{r.operation_id if r.status == 'pending' else '(no id yet)':24}  {r.prompt[:50]:50}  "
                  f"{made_by(r) + ': collect by id' if made_by(r) else pending_state(r)}\n")
    if records:
        out.write("Collect or finish them with: yart resume --all\n")
    else:
        out.write("nothing pending\n")
    return OK


def _store_copy(options: argparse.Namespace, out: TextIO) -> int:
    from ..store import get_store
    from ..store.backend import is_team_location
    from ..store.copy import copy_store
    from ..store.store import DB_FILE

    if not is_team_location(options.source) and not (Path(options.source).expanduser() / DB_FILE).is_file():
        raise errors.ConfigurationError(  # opening it would make an empty store there and copy nothing
            f"{options.source} holds no store (no {DB_FILE} in it): name the folder a store lives in "
            "(YANDEXART_HOME) or a team's postgresql:// URL. Nothing was copied")
    source, destination = get_store(options.source), get_store(options.destination)
    if source is destination:  # one store, named twice (the registry keeps one per location)
        raise errors.ConfigurationError(f"{options.source} and {options.destination} are the same store. Nothing "
                                        "was copied")

    def tell(done: int, total: int) -> None:  # a bar rewritten in place, ended when the copy is
        filled = 30 * done // max(1, total)
        sys.stderr.write(f"\rcopying [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} records"
                         f"{chr(10) if done == total else ''}")
        sys.stderr.flush()

    result = copy_store(source, destination, tell)
    out.write(f"{source.location} -> {destination.location}: {result.text()}\n")
    return OK


def _prune(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    from ..store import get_store
    from ..store.files import prune_limits, pruned_line

    if options.older_than is None and options.max_size is None:
        raise errors.InvalidRequestError("give --older-than DAYS and/or --max-size MB (nothing was deleted)")
    older_than, max_bytes = prune_limits(options.older_than, options.max_size, ("--older-than", "--max-size"))
    removed, freed = get_store(settings.store_location).prune(older_than=older_than, max_bytes=max_bytes)
    out.write(pruned_line(removed, freed) + "\n")
    return OK


def _info(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    from ..core.provenance import ProvenanceError, cell_text, info, summary
    from ..experiments.rerun import find_stored, recipe_of
    from ..present.records import why
    from ..store import get_store

    record = None if Path(options.path).expanduser().exists() else \
        find_stored(get_store(settings.store_location), options.path, "yart info")
    if record is not None and record.messages:  # #N or an operation id: the store's recipe of it
        recipe, picture = recipe_of(record)
        if picture is None:
            state = "done; its picture was pruned" if record.status == "done" else \
                f"{record.status}: {why(record)}" if why(record) else record.status
            out.write(f"{options.path}: {state}\n")
        out.write(f"{summary(recipe)}\n{cell_text(recipe)}\n")
        return OK
    try:
        found = info(options.path)
    except ProvenanceError as exc:  # no such file, or no recipe in it: the input, as with exit code 2
        raise errors.InvalidRequestError(exc.message) from None
    for recipe in found if isinstance(found, list) else [found]:
        out.write(f"{summary(recipe)}\n{cell_text(recipe)}\n")
    return OK


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
        if options.command == "history":
            return _history(settings, options, out)
        if options.command == "pending":
            return _pending(settings, options, out)
        if options.command == "store":
            return _store_copy(options, out)
        if options.command == "compare":
            return _compare(settings, options, out)
        if options.command == "info":
            return _info(settings, options, out)
        if options.command == "prune":
            return _prune(settings, options, out)
        if options.command == "models":
            from ..core.models import table_text

            out.write(table_text() + "\n")
            return OK
        runner = {"generate": _generate, "rerun": _rerun, "batch": _batch, "resume": _resume,
                  "status": _status}[options.command]
        return asyncio.run(_with_cleanup(runner(settings, options, out)))
    except KeyboardInterrupt:
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

    try:
        return int(await work)
    finally:
        await close_shared_clients()


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
