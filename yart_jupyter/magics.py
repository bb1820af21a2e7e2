"""``%%yandexart`` and ``%yandexart``: a thin face over the engine.

A cell starting with ``%%yandexart`` is rewritten by an input transformer into one top-level
``await`` of :func:`run_cell`, so IPython's autoawait runs it on the kernel's own event loop: the
cell stays busy, its status line updates in place, and an interrupt arrives as a cancellation.
"""

from __future__ import annotations

import argparse
import asyncio
import keyword
import os
import shlex
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, Float, Int, Unicode, observe

from . import errors
from .config import set_session_defaults
from .outputs import check_pattern, save_all
from .prompt import expand, parse_body, parse_seeds
from .request import GenerationRequest, Message
from .syncrun import run_sync

if TYPE_CHECKING:  # the engine, aiohttp and sqlite load on first use, so %load_ext stays fast
    from .client import Progress, YandexArtClient
    from .display import StatusLine
    from .engine import BatchStatus, JobRegistry
    from .image import GeneratedImage, ImageSet
    from .store import Store

MAGIC = "yandexart"


class MagicUsageError(errors.YandexArtError):
    """Options the magic does not understand."""

    hint = "See %%yandexart? for every option"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit the kernel
        raise MagicUsageError(f"{self.prog}: {message}")


def _cell_parser() -> _Parser:
    parser = _Parser(prog="%%yandexart", add_help=False, allow_abbrev=False)
    parser.add_argument("--seed", nargs="+", default=None)
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--aspect", default=None)
    parser.add_argument("--mime", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--var", default=None)
    parser.add_argument("--background", action="store_true")
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--no-cache", action="store_true", dest="no_cache")
    parser.add_argument("--raw", action="store_true")
    return parser


def _resume_parser() -> _Parser:
    parser = _Parser(prog="%yandexart resume", add_help=False, allow_abbrev=False)
    parser.add_argument("operation_id", nargs="?")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--var", default=None)
    parser.add_argument("--timeout", type=float, default=None)
    return parser


def _history_parser() -> _Parser:
    parser = _Parser(prog="%yandexart history", add_help=False, allow_abbrev=False)
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--search", default=None)
    return parser


def _prune_parser() -> _Parser:
    parser = _Parser(prog="%yandexart prune", add_help=False, allow_abbrev=False)
    parser.add_argument("--older-than", type=float, default=None, dest="older_than", metavar="DAYS")
    parser.add_argument("--max-size", type=float, default=None, dest="max_size", metavar="MB")
    return parser


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise MagicUsageError(f"cannot read the options: {exc}") from None


def _check_var(name: str | None) -> None:
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise errors.RequestValidationError("--var", name, "must be a valid Python name")


@dataclass
class _Plan:
    requests: list[GenerationRequest]
    options: argparse.Namespace
    single: bool


@magics_class
class YandexArt(Magics):
    """Generate images with YandexART. Settings: ``%config YandexArt`` lists them."""

    folder_id = Unicode(None, allow_none=True, help="Folder id (else YC_FOLDER_ID).").tag(config=True)
    base_url = Unicode(
        None, allow_none=True, help="API base URL, or 'emulator' (else YANDEXART_BASE_URL)."
    ).tag(config=True)
    model_uri = Unicode(None, allow_none=True, help="Model URI (default art://<folder>/yandex-art/latest).").tag(
        config=True
    )
    default_aspect = Unicode("1:1", help="Aspect ratio when a cell gives none.").tag(config=True)
    mime_type = Unicode("image/jpeg", help="image/jpeg or image/png.").tag(config=True)
    wait_timeout = Float(3600.0, help="Seconds to wait for a generation before giving up.").tag(config=True)
    request_timeout = Float(60.0, help="Seconds for one HTTP request.").tag(config=True)
    max_images = Int(16, help="Most images one cell may start (guards the quota).").tag(config=True)
    data_logging = Bool(
        None, allow_none=True, help="Send x-data-logging-enabled (None: do not send)."
    ).tag(config=True)
    generations_per_minute = Int(
        None, allow_none=True, help="The folder's generation quota per minute (else 500)."
    ).tag(config=True)
    reads_per_second = Int(
        None, allow_none=True, help="The folder's operation-read quota per second (else 50)."
    ).tag(config=True)
    data_dir = Unicode(
        None, allow_none=True, help="Folder of the local store (else YANDEXART_HOME, else the user data folder)."
    ).tag(config=True)

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell=shell)
        self._share_settings()

    @observe("folder_id", "base_url", "wait_timeout", "request_timeout", "data_logging", "data_dir",
             "generations_per_minute", "reads_per_second")
    def _settings_changed(self, change: Any) -> None:
        self._share_settings()

    def _share_settings(self) -> None:
        """Make these settings the session defaults, so the Python API and the form use them too."""
        set_session_defaults(
            base_url=self.base_url, folder_id=self.folder_id, wait_timeout=self.wait_timeout,
            request_timeout=self.request_timeout, data_logging=self.data_logging, data_dir=self.data_dir,
            generations_per_minute=self.generations_per_minute, reads_per_second=self.reads_per_second,
        )

    # -- engine access -----------------------------------------------------------------------

    @property
    def jobs(self) -> JobRegistry:
        """The process's background jobs (shared with the form)."""
        from .engine import JOBS

        return JOBS

    def client(self) -> YandexArtClient:
        """The shared client of the running loop for the current settings."""
        from .api import shared_client

        return shared_client()

    def store(self) -> Store:
        """The local store for the current settings."""
        from .store import get_store

        return get_store()

    def notebook_name(self) -> str | None:
        """The notebook this kernel serves, when the frontend says (Jupyter Server sets it)."""
        assert self.shell is not None
        name = self.shell.user_ns.get("__session__") or os.environ.get("JPY_SESSION_NAME")
        return str(name) if name else None

    def _set_result(self, value: Any) -> None:
        """Make ``value`` the cell's value (``_``, ``Out[n]``) without displaying it twice."""
        assert self.shell is not None
        self.shell.displayhook.update_user_ns(value)  # type: ignore[no-untyped-call]

    # -- the cell magic ----------------------------------------------------------------------

    def plan(self, line: str, cell: str) -> _Plan:
        """Parse and validate everything; nothing is sent and nothing is shown yet."""
        options = _cell_parser().parse_args(_split(line))
        assert self.shell is not None
        pieces = parse_body(cell)
        if not options.raw:
            pieces = [(expand(text, self.shell.user_ns), weight) for text, weight in pieces]
        messages = [Message(text, weight) for text, weight in pieces]
        if options.seed is not None and options.count is not None:
            raise MagicUsageError("give either --seed or --count, not both")
        if options.count is not None and not 1 <= options.count <= self.max_images:
            raise errors.RequestValidationError("--count", options.count, f"must be from 1 to {self.max_images}")
        seeds: list[int | None]
        if options.seed is not None:
            seeds = list(parse_seeds(options.seed, self.max_images))
        else:
            seeds = [None] * (options.count or 1)
        if options.timeout is not None and not options.timeout > 0:
            raise errors.RequestValidationError("--timeout", options.timeout, "must be a positive number of seconds")
        _check_var(options.var)
        client = self.client()
        requests = [
            client.build_request(
                messages, seed=seed, aspect=options.aspect or self.default_aspect,
                mime_type=options.mime or self.mime_type, model_uri=options.model or self.model_uri or None,
            )
            for seed in seeds
        ]
        if options.out:
            check_pattern(options.out, len(requests))
        return _Plan(requests, options, single=len(requests) == 1)

    async def cell(self, line: str, cell: str) -> None:
        """Run a ``%%yandexart`` cell: blocking by default, or as a background job."""
        from .display import StatusLine
        from .engine import BatchStatus

        plan = self.plan(line, cell)
        client = self.client()
        status = BatchStatus(len(plan.requests))
        status_line = StatusLine(status.text())
        if plan.options.background:
            count = len(plan.requests)
            description = f"{count} image{'s' if count > 1 else ''}: {plan.requests[0].prompt[:40]}"
            job = self.jobs.submit(
                self._execute(client, plan, status, status_line, background=True), description, status,
            )
            self._set_result(job)
            return
        result = await self._execute(client, plan, status, status_line, background=False)
        self._set_result(result)

    async def _execute(
        self, client: YandexArtClient, plan: _Plan, status: BatchStatus, status_line: StatusLine, *, background: bool
    ) -> GeneratedImage | ImageSet:
        from .display import message_bundle
        from .engine import GenerationInterrupted, run_batch

        ticker = asyncio.ensure_future(self._tick(status_line, status))
        try:
            images, failures = await run_batch(
                client, plan.requests, status=status, timeout=plan.options.timeout,
                on_update=lambda s: status_line.update(s.text()), store=self.store(),
                use_cache=not plan.options.no_cache, notebook=self.notebook_name(),
            )
        except GenerationInterrupted as exc:
            status_line.replace(message_bundle(str(exc), "warning") if background else {"text/plain": ""})
            raise
        except errors.YandexArtError as exc:
            status_line.replace(message_bundle(str(exc), "error") if background else {"text/plain": ""})
            raise
        finally:
            ticker.cancel()
        result = self._present(status_line, images, failures, out=plan.options.out, var=plan.options.var,
                               single=plan.single, error_in_place=background)
        if failures:
            raise failures[0] if len(failures) == 1 else type(failures[0])(
                f"{len(failures)} of {len(plan.requests)} generations failed; the first: {failures[0].message}",
                operation_id=failures[0].operation_id, request_id=failures[0].request_id,
            )
        return result

    def _present(
        self, status_line: StatusLine, images: ImageSet, failures: list[errors.YandexArtError], *,
        out: str | None, var: str | None, single: bool, error_in_place: bool,
    ) -> GeneratedImage | ImageSet:
        """Save (``--out``), replace the status line with the pictures and a line per failure, and
        store the result (``--var``); a failed save joins ``failures``, the pictures are still shown."""
        from .display import images_bundle, message_bundle

        notes: list[str] = []
        if out and images:
            try:
                notes.append("saved " + ", ".join(str(p) for p in save_all(out, list(images))))
            except errors.StorageError as exc:
                failures.append(exc)
        notes.extend(f"✖ {failure}" for failure in failures)
        if images:
            status_line.replace(images_bundle(images, notes))
        elif error_in_place and notes:
            status_line.replace(message_bundle("; ".join(notes), "error"))
        else:
            status_line.replace({"text/plain": ""})
        result: GeneratedImage | ImageSet = images[0] if single and images else images
        if var:
            assert self.shell is not None
            self.shell.user_ns[var] = result
        return result

    @staticmethod
    async def _tick(status_line: StatusLine, status: BatchStatus) -> None:
        while True:
            await asyncio.sleep(1.0)
            status_line.update(status.text(), force=True)

    @cell_magic(MAGIC)  # type: ignore[arg-type]
    def yandexart_cell(self, line: str, cell: str) -> None:
        """Generate images with YandexART; the cell body is the prompt.

        Usage::

            %%yandexart [--seed N [N ...]] [--count N] [--aspect W:H|PRESET] [--mime TYPE]
                        [--model URI] [--out PATTERN] [--var NAME] [--background]
                        [--timeout S] [--no-cache] [--raw]
            a lighthouse on a cliff at dawn, {style}
            --- 0.3
            soft watercolour

        Body: lines are joined with spaces into one message; a line ``---`` starts another
        message and ``--- W`` one with weight W (default 1; the body may begin with such a line).
        ``{name}`` inserts a notebook variable or expression; ``{{`` and ``}}`` are literal
        braces; ``--raw`` turns expansion off. At most 500 characters per message.

        Options:
          --seed N [N ...]  one image per seed; ranges A-B allowed (e.g. --seed 1 5-8)
          --count N         N images with random seeds (each seed is reported)
          --aspect W:H      whole numbers between 1:4 and 4:1, or a preset: square, wide (16:9),
                            tall (9:16), landscape (3:2), portrait (2:3), banner (2:1),
                            skyscraper (1:2), ultrawide (21:9), photo (4:3)
          --mime TYPE       image/jpeg (default) or image/png
          --model URI       model URI (default art://<folder>/yandex-art/latest)
          --out PATTERN     save to files; {seed}, {n} and {op} are filled in; folders are
                            created; an existing file is never overwritten
          --var NAME        also store the result in the variable NAME
          --background      return at once; the result replaces the status line when ready
          --timeout S       give up waiting after S seconds (the operation id is reported)
          --no-cache        generate anew even when the store has this exact request (same
                            prompt, seed, aspect, type and model); without it such a request is
                            answered from the local store at once, with no API call
          --raw             do not expand {...} in the prompt

        The cell's value (``_``) is the GeneratedImage, or a list of them for several seeds.
        Every generation is recorded in the local store (``YANDEXART_HOME``).
        Line forms: ``%yandexart jobs``, ``%yandexart cancel [JOB|OP|all]``,
        ``%yandexart resume OPERATION_ID|--all [--out P] [--var N]``, ``%yandexart pending``,
        ``%yandexart history [-n N] [--search TEXT]``, ``%yandexart prune [--older-than DAYS]
        [--max-size MB]``, ``%yandexart form`` (the widget form), ``%yandexart PROMPT [options]``.
        Settings: ``%config YandexArt`` (folder_id, base_url, default_aspect, timeouts, ...).
        """
        run_sync(self.cell(line, cell))

    # -- the line magic ----------------------------------------------------------------------

    async def line(self, line: str) -> None:
        """``%yandexart jobs | cancel [ID|all] | resume OP [...] | PROMPT [options]``."""
        from .display import message_bundle

        command, _, rest = line.strip().partition(" ")
        handlers: dict[str, Callable[[str], Coroutine[Any, Any, None]]] = {
            "jobs": self._jobs, "cancel": self._cancel, "resume": self._resume, "pending": self._pending,
            "history": self._history, "prune": self._prune, "form": self._form,
        }
        if not command:
            self._show(message_bundle(
                "Usage: %%yandexart [options] + prompt in the cell body; %yandexart jobs | cancel [ID|all] "
                "| resume OPERATION_ID|--all | pending | history [-n N] [--search TEXT] "
                "| prune [--older-than DAYS] [--max-size MB] | form | PROMPT [options]. Details: %%yandexart?"
            ))
            return
        if command in handlers:
            await handlers[command](rest)
            return
        prompt, sep, options = line.partition(" --")
        await self.cell(sep.strip() + options if sep else "", prompt)

    def _show(self, bundle: dict[str, Any]) -> None:
        from IPython.display import display

        display(bundle, raw=True)  # type: ignore[no-untyped-call]

    async def _jobs(self, rest: str) -> None:
        from .display import message_bundle

        if not self.jobs.jobs:
            self._show(message_bundle("No background jobs in this kernel."))
            return
        jobs = list(self.jobs.jobs.values())
        shown = [j for j in jobs if j.state == "running"] + [j for j in jobs if j.state != "running"][-10:]
        rows = [f"{j.id:<4} {j.state:<9} {j.status.text()}  — {j.description}" for j in shown]
        self._show({"text/plain": "\n".join(rows),
                    "text/html": "<pre style='font-size:12px'>" + "\n".join(_escape(r) for r in rows) + "</pre>"})

    async def _cancel(self, rest: str) -> None:
        from .display import message_bundle
        from .engine import server_canceller

        key = rest.strip() or "all"
        jobs = self.jobs.find(key)
        if not jobs and key == "all":
            self._show(message_bundle("No running jobs."))
            return
        if not jobs:
            raise MagicUsageError(f"no running job or operation {key!r}; see %yandexart jobs")
        cancelled = await self.jobs.cancel(jobs, cancel_remote=server_canceller(self.client(), self.store()))
        ids = ", ".join(j.id for j in jobs)
        remote = f"; server-side cancel confirmed for {', '.join(cancelled)}" if cancelled else ""
        self._show(message_bundle(f"Cancelled {ids}{remote}."))

    async def _resume(self, rest: str) -> None:
        from .display import StatusLine, message_bundle
        from .engine import BatchStatus, resume
        from .image import GeneratedImage, ImageSet

        options = _resume_parser().parse_args(_split(rest))
        _check_var(options.var)
        store = self.store()
        if options.all:
            if options.operation_id:
                raise MagicUsageError("give an operation id or --all, not both")
            ids = [r.operation_id for r in await asyncio.to_thread(store.pending)]
            if not ids:
                self._show(message_bundle("Nothing pending: every recorded operation was collected."))
                return
        elif options.operation_id:
            ids = [options.operation_id]
        else:
            raise MagicUsageError("%yandexart resume: give an operation_id, or --all")
        if options.out:
            check_pattern(options.out, len(ids))
        client = self.client()
        status = BatchStatus(len(ids))
        status.operation_ids.extend(ids)
        status_line = StatusLine(status.text())

        def progress(event: Progress) -> None:
            if event.phase == "done" and event.operation_id:
                status.finished_ids.add(event.operation_id)
            status_line.update(status.text())

        outcomes = await asyncio.gather(
            *(resume(client, op, store=store, timeout=options.timeout, on_progress=progress) for op in ids),
            return_exceptions=True,
        )
        images = ImageSet(o for o in outcomes if isinstance(o, GeneratedImage))
        failures = [o for o in outcomes if isinstance(o, errors.YandexArtError)]
        for other in outcomes:
            if isinstance(other, BaseException) and not isinstance(other, errors.YandexArtError):
                raise other
        result = self._present(status_line, images, failures, out=options.out, var=options.var,
                               single=not options.all, error_in_place=options.all)
        self._set_result(result)
        if failures and not options.all:
            raise failures[0]

    async def _form(self, rest: str) -> None:
        from .form import form

        form()

    async def _pending(self, rest: str) -> None:
        from .display import message_bundle, records_table

        records = await asyncio.to_thread(self.store().pending)
        if not records:
            self._show(message_bundle("Nothing pending: every recorded operation was collected."))
            return
        running = {op for job in self.jobs.running() for op in job.status.operation_ids}
        self._show(records_table(records, running))

    async def _history(self, rest: str) -> None:
        from .display import history_bundle, message_bundle

        options = _history_parser().parse_args(_split(rest))
        store = self.store()
        records = await asyncio.to_thread(store.history, options.n, options.search)
        if not records:
            self._show(message_bundle("No generations recorded yet." if not options.search
                                      else f"No generation matches {options.search!r}."))
            return
        thumbs = await asyncio.to_thread(lambda: [store.thumbnail(r) for r in records])
        self._show(history_bundle(records, thumbs))

    async def _prune(self, rest: str) -> None:
        from .display import message_bundle

        options = _prune_parser().parse_args(_split(rest))
        if options.older_than is None and options.max_size is None:
            raise MagicUsageError("%yandexart prune: give --older-than DAYS and/or --max-size MB")
        for name, value in (("--older-than", options.older_than), ("--max-size", options.max_size)):
            if value is not None and value < 0:
                raise errors.RequestValidationError(name, value, "must not be negative")
        removed, freed = await asyncio.to_thread(
            self.store().prune,
            older_than=options.older_than * 86400 if options.older_than is not None else None,
            max_bytes=int(options.max_size * 1024 * 1024) if options.max_size is not None else None,
        )
        self._show(message_bundle(f"Pruned {removed} record{'s' if removed != 1 else ''}, "
                                  f"{freed / 1024 / 1024:.1f} MB freed (pending operations are kept)."))

    @line_magic(MAGIC)  # type: ignore[arg-type]
    def yandexart_line(self, line: str) -> None:
        """``%yandexart jobs | cancel [ID|all] | resume OPERATION_ID | PROMPT [options]`` (see %%yandexart?)."""
        run_sync(self.line(line))


def _escape(text: str) -> str:
    import html

    return html.escape(text)


# -- loading ---------------------------------------------------------------------------------

_instance: YandexArt | None = None


def _loaded() -> YandexArt:
    if _instance is None or _instance.shell is None:
        raise MagicUsageError("the extension is not loaded: run %load_ext yart_jupyter")
    return _instance


async def run_cell(line: str, cell: str) -> None:
    """What a transformed ``%%yandexart`` cell awaits (the line expanded as IPython would)."""
    magics = _loaded()
    assert magics.shell is not None
    await magics.cell(magics.shell.var_expand(line), cell)  # type: ignore[no-untyped-call]


async def run_line(line: str) -> None:
    """What a transformed one-line ``%yandexart ...`` cell awaits."""
    magics = _loaded()
    assert magics.shell is not None
    await magics.line(magics.shell.var_expand(line))  # type: ignore[no-untyped-call]


def _transformer(shell: InteractiveShell) -> Callable[[list[str]], list[str]]:
    cell_prefix, line_prefix = f"%%{MAGIC}", f"%{MAGIC}"
    target = "__import__('yart_jupyter.magics', fromlist=['run_cell'])"

    def transform(lines: list[str]) -> list[str]:
        if not lines or not shell.autoawait:
            return lines
        first = lines[0].rstrip("\n")
        if first == cell_prefix or first.startswith(cell_prefix + " "):
            line = first[len(cell_prefix):].strip()
            body = "".join(lines[1:])
            return [f"await {target}.run_cell({line!r}, {body!r})\n"]
        text = "".join(lines).strip()
        if "\n" not in text and (text == line_prefix or text.startswith(line_prefix + " ")):
            return [f"await {target}.run_line({text[len(line_prefix):].strip()!r})\n"]
        return lines

    transform.yart = True  # type: ignore[attr-defined]
    return transform


def load(shell: InteractiveShell) -> None:
    """Register the magics and the input transformer."""
    global _instance
    _instance = YandexArt(shell)
    shell.register_magics(_instance)
    if not any(getattr(t, "yart", False) for t in shell.input_transformers_cleanup):
        shell.input_transformers_cleanup.append(_transformer(shell))


def unload(shell: InteractiveShell) -> None:
    """Remove the magics and the transformer; running jobs are cancelled."""
    global _instance
    shell.input_transformers_cleanup[:] = [t for t in shell.input_transformers_cleanup if not getattr(t, "yart", False)]
    for kind in ("cell", "line"):
        shell.magics_manager.magics[kind].pop(MAGIC, None)
    if _instance is not None:
        for job in _instance.jobs.running():
            job.task.cancel()
        instance: object = _instance
        shell.configurables = [c for c in shell.configurables if c is not instance]
    set_session_defaults(base_url=None, folder_id=None, wait_timeout=None, request_timeout=None, data_logging=None,
                         data_dir=None, generations_per_minute=None, reads_per_second=None)
    _instance = None
