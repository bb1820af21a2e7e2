"""Running a planned batch: rows made earlier skipped, unfinished ones collected, the rest started in quota."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..clients.client import YandexArtClient
from ..core import errors
from ..core.config import Settings
from ..core.request import GenerationRequest
from ..core.status import BatchStatus
from ..core.steps import off_thread
from ..engine import Batch, Cached, Intent, Item, prepare, run_batch
from ..engine.arrivals import ARRIVALS
from ..engine.outcomes import Refusals, cancel_and_settle
from ..media.image import GeneratedImage
from ..store import Store
from .dataset import Metadata, write_row
from .plan import Row, TablePlan
from .result import BatchResult
from .triage import triage

DAY = 86_400.0


@dataclass
class Budget:
    """The folder's daily generation quota as the store has seen it: starts in the last 24 hours."""

    limit: int
    used: int
    oldest: float | None
    exhausted: bool = False

    @classmethod
    def today(cls, store: Store, settings: Settings) -> Budget:
        """The day's quota as the store counted it: ``generations_per_day``, the starts of the last 24 hours."""
        used, oldest = store.starts_since(time.time() - DAY)
        return cls(settings.generations_per_day, used, oldest)

    @property
    def left(self) -> int:
        """Starts the day still allows."""
        return max(0, self.limit - self.used)

    def take(self) -> bool:
        if self.exhausted or self.used >= self.limit:
            self.exhausted = True
            return False
        self.used += 1
        return True

    def frees_at(self) -> datetime:
        """When the next generation may start again: a day after the oldest start counted."""
        base = self.oldest if self.oldest is not None else time.time()
        return datetime.fromtimestamp(base + DAY, timezone.utc)


async def _deliver(row: Row, root: Path | None, metadata: Metadata | None, image: GeneratedImage) -> None:
    """An interrupted row's Images API picture arrived after all: its file and metadata line are written."""
    await asyncio.to_thread(write_row, row, image, root, metadata)


async def run_table(
    client: YandexArtClient, store: Store, settings: Settings, batch: TablePlan, status: BatchStatus, *,
    on_update: Callable[[BatchStatus], None] | None = None, notebook: str | None = None,
    concurrency: int | None = None, resend_lost: bool = False,
) -> BatchResult:
    """Generate every valid row not made yet, write its file and metadata line, and return the table.

    A row is skipped when an earlier run wrote its file for the same request; answered from the
    store when it has the picture; collected when its operation is still pending from an earlier
    run; and started only otherwise, while the daily quota lasts. An interrupt leaves every started
    operation pending in the store (the next run collects it).
    """
    began = time.monotonic()
    metadata = Metadata(batch.root) if batch.root is not None else None
    todo: list[tuple[Row, Item]] = []
    for decision in triage(batch, store, metadata, resend_lost=resend_lost):
        row, record = decision.row, decision.record
        if decision.fate == "earlier":
            row.status = "earlier"
            if metadata is not None and row.path is not None:  # for the summary's version check
                row.model_version = metadata.model_version(row.path)
            status.from_store()
        elif decision.fate == "clash":
            row.status, row.error = "failed", f"{row.path} exists and was not made by this batch (never overwritten)"
            status.failed_item()
        elif decision.fate == "lost":
            assert record is not None
            row.status = "lost"
            row.error = (f"sent, answer lost (intent {record.idempotency_key}; the Images API keeps nothing to "
                         "collect): resend_lost=True (yart ... --resend-lost) sends it again")
            status.failed_item()
        else:
            todo.append((row, decision.item))
    requests = [item for _, item in todo if isinstance(item, GenerationRequest)]
    prepared = iter(prepare(store, Batch(requests, notebook=notebook), status).items)
    items = [(row, next(prepared) if isinstance(item, GenerationRequest) else item) for row, item in todo]
    for _, item in items:
        if isinstance(item, Intent):
            status.queued(item.key, synchronous=item.request.api == "images")  # an earlier run's, with its key
    budget = Budget.today(store, settings)
    refusals = Refusals()  # one for every row: a denied model stops the rows not sent yet
    gate = asyncio.Semaphore(concurrency or max(8, settings.generations_per_minute))

    async def one(row: Row, item: Item) -> None:
        async with gate:
            if isinstance(item, Intent) and not budget.take():
                row.status = "quota"
                status.dropped(item.key)
                await off_thread(store.settle_intent, item.key, "cancelled",
                               "the daily quota ran out; run the batch again")
                return
            images, failures = await run_batch(client, [item], status=status, store=store, on_update=on_update,
                                               notebook=notebook, refusals=refusals)
            if failures:
                error = failures[0]
                row.status, row.error, row.operation_id = "failed", str(error), error.operation_id
                if isinstance(error, errors.NotSentError):
                    row.status = "quota" if isinstance(error.refusal, errors.QuotaExceededError) else "stopped"
                    budget.exhausted = budget.exhausted or row.status == "quota"
                elif isinstance(error, errors.QuotaExceededError) and error.period == "day":
                    budget.exhausted = True  # the service says the day's quota is gone: start nothing more
                    row.status = "quota"
                elif isinstance(error, errors.QuotaExceededError):
                    row.error = (f"{error.message} (a {error.period or 'short'}-term quota, shared with everyone "
                                 "using the folder; run the batch again to make this row)")
                return
            image = images[0]
            row.operation_id, row.model_version, row.duration = image.operation_id, image.model_version, image.duration
            row.status = "cached" if isinstance(item, Cached) or image.cached else "done"
            if row.path is not None:
                await asyncio.to_thread(write_row, row, image, batch.root, metadata)

    tasks = [asyncio.ensure_future(one(row, item)) for row, item in items]
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        await cancel_and_settle(tasks, store, (item.key for row, item in items
                                               if row.status == "queued" and isinstance(item, Intent)))
        for row, item in items:
            if row.status == "queued":
                row.status = "interrupted"
            picture = status.arriving.get(item.key) if isinstance(item, Intent) else None
            if picture is not None and row.path is not None:  # paid for, still coming: its file is written then
                ARRIVALS.then(picture, functools.partial(_deliver, row, batch.root, metadata))
        raise
    finally:
        if metadata is not None:
            await asyncio.to_thread(metadata.compact)
    result = BatchResult(batch.rows, batch.root, elapsed=time.monotonic() - began)
    quota_rows = sum(row.status == "quota" for row in batch.rows)
    if quota_rows:
        frees = budget.frees_at().astimezone()
        result.quota_note = (f"The daily quota ({settings.generations_per_day:,} generations) ran out: "
                             f"{quota_rows} rows are left; it frees from {frees:%Y-%m-%d %H:%M} "
                             "(run the same batch again then: it continues where it stopped)")
    return result

