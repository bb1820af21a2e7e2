"""The short Python API: ``await yart_jupyter.generate("prompt", seed=1863, aspect="2:1")``.

Every call reads the one settings object (``%config YandexArt.*``, :func:`configure`, the
environment); its own arguments win. Cancellation (``asyncio.wait_for``, ``asyncio.timeout``,
TaskGroups, an interrupt) passes through as :class:`asyncio.CancelledError`, after a warning
that names the operations still running on the server (they stay pending in the store) and the
Images API pictures already paid for, whose answers are still received into the store while the
event loop runs (``resume`` of their ``img-`` id waits for one).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

from .clients.shared import shared_client
from .core.models import chosen
from .core.request import AspectRatioLike, PromptLike
from .core.settings import current
from .core.status import PYTHON_COLLECT, BatchStatus
from .engine import Batch, CallbackView, prepare, run_in_view
from .engine.jobs import JOBS, Job
from .media.image import GeneratedImage
from .store import History, get_store

if TYPE_CHECKING:
    from .batches import BatchPreview
    from .engine.setup import SetupReport
    from .experiments.experiment import Experiment
    from .experiments.rerun import Rerun



async def generate(
    prompt: PromptLike,
    *,
    seed: int | str | None = None,
    aspect: AspectRatioLike | None = None,
    mime_type: str | None = None,
    model: str | None = None,
    model_uri: str | None = None,
    timeout: float | None = None,
    cache: bool = True,
    on_update: Callable[[BatchStatus], None] | None = None,
    base_url: str | None = None,
    folder_id: str | None = None,
) -> GeneratedImage:
    """Generate one image, record it in the local store and return it.

    With no seed a random one is chosen and recorded; with an explicit seed that was generated
    before, the stored image is returned at once, and one on its way (another run's, another
    kernel's pending operation) is awaited, not paid for again (``cache=False`` forces a new generation).
    Left out, ``aspect``, ``mime_type`` and ``model`` come from the settings; ``model`` is a catalogue
    name (``aliceai-image-art-3.0``) or a URI (``model_uri`` is the same, kept for older code).
    ``base_url="emulator"`` (or ``YANDEXART_BASE_URL=emulator``) uses the embedded emulator.
    """
    settings = current(base_url=base_url, folder_id=folder_id)
    request = settings.request(prompt, seed=seed, aspect=aspect, mime_type=mime_type,
                               model_uri=chosen(model, model_uri))
    images = await run_in_view(shared_client(settings), get_store(settings.store_location),
                               Batch([request], timeout=timeout, use_cache=cache, reuse_samples=settings.reuse_samples,
                                     hint_reuse=True),
                               CallbackView(on_update, PYTHON_COLLECT))
    return images[0]


def submit(
    prompt: PromptLike,
    *,
    seed: int | str | None = None,
    aspect: AspectRatioLike | None = None,
    mime_type: str | None = None,
    model: str | None = None,
    model_uri: str | None = None,
    timeout: float | None = None,
    cache: bool = True,
) -> Job:
    """Start a generation in the background and return its job at once (``await job`` for the image).

    Unlike ``asyncio.create_task(generate(...))``, the request is recorded in the store before this
    returns, so a kernel that dies before the task ever runs still has it (``%yandexart pending``,
    ``resume --all``). Call it where an event loop runs (a notebook cell does).
    """
    settings = current()
    request = settings.request(prompt, seed=seed, aspect=aspect, mime_type=mime_type,
                               model_uri=chosen(model, model_uri))
    status = BatchStatus(1)
    store = get_store(settings.store_location)
    batch = prepare(store, Batch([request], timeout=timeout, use_cache=cache, reuse_samples=settings.reuse_samples,
                                 hint_reuse=True), status)

    async def one() -> GeneratedImage:
        view = CallbackView(None, PYTHON_COLLECT)
        return (await run_in_view(shared_client(settings), store, batch, view, status=status))[0]

    return JOBS.submit(one(), f"submit: {request.prompt[:40]}", status)


async def resume(operation_id: str, *, timeout: float | None = None) -> GeneratedImage:
    """Collect an operation started earlier (its image is recorded in the store like any other)."""
    settings = current()
    images = await run_in_view(shared_client(settings), get_store(settings.store_location),
                               Batch([operation_id], timeout=timeout), CallbackView(None, PYTHON_COLLECT))
    return images[0]


async def rerun(source: str | os.PathLike[str], *, cache: bool = True) -> Rerun:
    """Generate a picture again with the same parameters — from an image file's recipe, a history
    entry (``"#2"``) or an operation id — and say whether the pixels match (``.same``; ``.verdict``
    says it in a line, ``.image`` is the new picture). A generation that failed is sent again; with
    ``cache`` an explicit seed the store has is answered from it, as ``generate`` is."""
    from .experiments.rerun import PYTHON, find_origin, judged, request_of

    settings = current()
    store = get_store(settings.store_location)
    origin = await asyncio.to_thread(find_origin, store, os.fspath(source), "yart_jupyter.rerun()", PYTHON)
    images = await run_in_view(shared_client(settings), store,
                               Batch([request_of(settings, origin.recipe)], use_cache=cache),
                               CallbackView(None, PYTHON_COLLECT))
    return await asyncio.to_thread(judged, origin, images[0])


async def status() -> SetupReport:
    """What generations would use — endpoint, folder, credentials (redacted), model, store — and what
    stands in the way (``.ready``, ``.problems``); nothing is sent to the service. Shows itself as a
    table in a notebook."""
    from .engine.setup import check_setup

    return await check_setup(current())


def history(limit: int | None = 20, search: str | None = None, status: str | None = None, *,
            team: bool = False) -> History:
    """My records in the store, newest first (``search`` matches prompts; ``team``: everyone's): a
    list of :class:`~.store.Record` that shows itself as the history's gallery in a notebook."""
    store = get_store()
    records = store.history(limit, search, status, team=team)
    return History(records, store.thumbnail, store.numbers(records))


def prune(*, older_than_days: float | None = None, max_megabytes: float | None = None) -> tuple[int, int]:
    """Delete old records and images from the local store; returns (records, bytes) freed. A negative
    limit is refused (nothing is deleted)."""
    from .store.files import prune_limits

    older_than, max_bytes = prune_limits(older_than_days, max_megabytes)
    return get_store().prune(older_than=older_than, max_bytes=max_bytes)


def load_experiment(experiment_id: str) -> Experiment:
    """A sweep from the local store (a prefix of its id will do), each cell with its stored picture."""
    from .experiments.experiment import Experiment

    return Experiment.load(get_store(current().store_location), experiment_id)


@overload
def batch(rows: Any, *, prompt: str, seed: int | str | None = ..., aspect: str | None = ...,
          mime_type: str | None = ..., model: str | None = ..., model_uri: str | None = ..., out: str | None = ...,
          skip_invalid: bool = ..., resend_lost: bool = ..., dry_run: Literal[False] = ...) -> Job: ...
@overload
def batch(rows: Any, *, prompt: str, seed: int | str | None = ..., aspect: str | None = ...,
          mime_type: str | None = ..., model: str | None = ..., model_uri: str | None = ..., out: str | None = ...,
          skip_invalid: bool = ..., resend_lost: bool = ..., dry_run: Literal[True]) -> BatchPreview: ...
def batch(
    rows: Any,
    *,
    prompt: str,
    seed: int | str | None = None,
    aspect: str | None = None,
    mime_type: str | None = None,
    model: str | None = None,
    model_uri: str | None = None,
    out: str | None = None,
    skip_invalid: bool = False,
    resend_lost: bool = False,
    dry_run: bool = False,
) -> Job | BatchPreview:
    """Generate a table of prompts: ``rows`` is a list of dicts, a CSV/JSONL path or a DataFrame;
    ``prompt`` (and ``seed``, ``aspect``, ``out``) are templates filled from each row's columns.

    Every row is validated before anything is sent (a :class:`~.batches.BatchInputError` lists the
    bad rows by number). Returns a job at once; ``await`` it for the :class:`~.batches.BatchResult`.
    In a notebook, a progress bar (done, from the store, failed, rate, time left) shows in the cell
    and is replaced by the results table. Running the same batch again continues where it stopped (a
    row whose Images API request was sent and its answer lost is sent again only with
    ``resend_lost``). ``model``: a catalogue name (``aliceai-image-art-3.0``) or a URI.
    ``dry_run=True`` returns a :class:`~.batches.BatchPreview` instead: what a run would do with every
    row and the quota it would take; nothing is sent or recorded.
    """
    from .batches import load_rows, plan_table, preview_table, run_table

    settings = current()
    planned = plan_table(load_rows(rows), settings, prompt=prompt, seed=seed, aspect=aspect, mime_type=mime_type,
                         model_uri=chosen(model, model_uri), out=out, skip_invalid=skip_invalid)
    store = get_store(settings.store_location)
    if dry_run:
        return preview_table(planned, store, settings, resend_lost=resend_lost)
    status = BatchStatus(len(planned.valid))
    status.show_rate = True
    line = _status_line(status)
    cell = _execution_count()

    async def go() -> Any:
        try:
            result = await run_table(shared_client(settings), store, settings, planned, status,
                                     on_update=line.update if line is not None else None, resend_lost=resend_lost)
        except BaseException:
            if line is not None:
                line.update(status, force=True)
            raise
        if line is not None:
            line.replace({"text/html": result._repr_html_(), "text/plain": result.summary()})
            result.shown_in = cell
        return result

    return JOBS.submit(go(), f"batch: {len(planned.rows)} rows", status)


def _execution_count() -> int | None:
    """The number of the cell running now (None outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return None if shell is None else int(shell.execution_count)


def _status_line(status: BatchStatus) -> Any:
    """A live progress line in the current cell, when there is a notebook to show it in."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    if get_ipython() is None:
        return None
    from .present.live import StatusLine

    return StatusLine(status)
