"""What the engine runs: requests recorded as intents before anything is sent, stored answers, ids to collect.

:func:`prepare` commits a ``queued`` record of every request, with the idempotency key its start
will carry, on the caller's turn: a kernel that dies right after still has them all.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..core.config import REUSE_SETTING
from ..core.request import GenerationRequest, validate_timeout
from ..core.status import BatchStatus
from ..store import Record, Store, request_key


@dataclass(frozen=True)
class Intent:
    """A generation recorded as asked for: its request and the idempotency key its start carries.

    ``resend``: its start went out before and its answer was never recorded (after a crash); it
    goes out again with the same key, which the service deduplicates on. ``joins``: the operation of
    the same picture already on its way when it was recorded (another kernel's, a teammate's, an
    earlier run's), collected instead of paying again.
    """

    request: GenerationRequest
    key: str
    resend: bool = False
    joins: str | None = None


@dataclass(frozen=True)
class Cached:
    """A request the local store has already answered (no API call)."""

    record: Record


#: A batch item: a request to generate (made an Intent by :func:`prepare`), an operation id to
#: collect, or a stored answer.
Item = GenerationRequest | Intent | Cached | str


@dataclass(frozen=True)
class Batch:
    """What to run: requests and/or operation ids to collect, with the cell's or form's options."""

    items: Sequence[Item]
    timeout: float | None = None
    use_cache: bool = True
    #: On a model without seeds, answer a request from the samples the store has of it (each once).
    reuse_samples: bool = False
    out: str | None = None
    notebook: str | None = None
    #: Extra fields ``out`` may name, per item (a sweep's axis values: ``--out {style}-{seed}.jpg``).
    fields: Sequence[dict[str, str]] = ()
    #: Say (once per process) when seedless requests are sent though the store has samples of them:
    #: the faces whose runs are run again (a cell, ``yart generate``, the Python API), not the form,
    #: whose Generate always asks anew, nor a rerun, which says it makes a new picture.
    hint_reuse: bool = False
    #: Set by :func:`prepare`: how many of the requests ``reuse_samples`` would have answered.
    reusable: int = 0

    def __post_init__(self) -> None:
        """Every face's timeout is checked here, before anything is recorded or sent."""
        object.__setattr__(self, "timeout", validate_timeout(self.timeout))


def prepare(store: Store | None, batch: Batch, status: BatchStatus) -> Batch:
    """Record every requested generation before anything is sent, synchronously, on the caller's turn.

    A face calls it before it hands control back (a background cell, the form's click), so a
    kernel that dies right after still has a ``queued`` record of each, with the idempotency key
    its start will carry. Requests the store already answered become :class:`Cached` items.
    """
    items: list[Item] = []
    asked = [item for item in batch.items if isinstance(item, GenerationRequest)]
    answered = stored_answers(store, asked, use_cache=batch.use_cache, reuse_samples=batch.reuse_samples)
    on_its_way = on_their_way(store, [r for r, a in zip(asked, answered, strict=True) if a is None]) \
        if batch.use_cache else {}
    answers = iter(answered)
    queued: list[tuple[GenerationRequest, str]] = []
    for item in batch.items:
        if isinstance(item, GenerationRequest):
            record = next(answers)
            if record is not None:
                items.append(Cached(record))
                continue
            key = str(uuid.uuid4())
            queued.append((item, key))
            item = Intent(item, key, joins=on_its_way.get(request_key(item)))
        if isinstance(item, Intent):
            status.queued(item.key, synchronous=item.request.api == "images")
        items.append(item)
    reusable = 0
    if batch.hint_reuse and batch.use_cache and not batch.reuse_samples and not _reuse_said:
        reusable = reusable_samples(store, [request for request, _ in queued])
    if store is not None:
        store.record_queued_many(queued, notebook=batch.notebook)
    return dataclasses.replace(batch, items=items, reusable=reusable)


def reusable_samples(store: Store | None, requests: Sequence[GenerationRequest]) -> int:
    """How many of the seedless requests the store has a sample of, each sample counted for one
    request: what ``reuse_samples`` would answer at no cost."""
    seedless = [request for request in requests if request.seed is None]
    return sum(answer is not None for answer in stored_answers(store, seedless, reuse_samples=True))


_reuse_said = False  # the note below is said once per process: a researcher who wants new samples has heard it


def reuse_notes(batch: Batch) -> list[str]:
    """The note that a run paid for samples the store had (on a model without seeds every run is a
    new, billed sample), and how a notebook run again shows the stored ones instead; once."""
    global _reuse_said
    if not batch.reusable or _reuse_said:
        return []
    _reuse_said = True
    paid = (f"{batch.reusable} of these pictures were" if batch.reusable > 1 else "this picture was") + \
        " paid for though the store had samples of the same request"
    return [f"ℹ {paid}: a model without seeds makes new ones on every run; {REUSE_SETTING} shows the stored ones "
            "instead, at no cost (said once)"]


def stored_answers(store: Store | None, requests: Sequence[GenerationRequest], *, use_cache: bool = True,
                   reuse_samples: bool = False) -> list[Record | None]:
    """The store's answer to each request, or None where it must be generated: the picture of an
    explicit seed, and with ``reuse_samples`` a sample of a seedless request (a model without seeds),
    newest first, each sample answering one request — a cell's ``--count 3`` run again is the same
    three pictures, at no cost."""
    if store is None or not use_cache:
        return [None] * len(requests)
    seeded = store.find_many([r for r in requests if r.seed_was_given], ("done",))
    samples = store.find_all([r for r in requests if r.seed is None], ("done",)) if reuse_samples else {}
    answers: list[Record | None] = []
    for request in requests:
        key = request_key(request)
        kept = samples.get(key) if request.seed is None else None
        answers.append(seeded.get(key) if request.seed_was_given else kept.pop(0) if kept else None)
    return answers


#: How long the service keeps an operation's result: an older pending one is not joined.
KEPT = timedelta(days=3)


def on_their_way(store: Store | None, requests: Sequence[GenerationRequest]) -> dict[str, str]:
    """The operation of each reproducible request (an explicit seed) that is already on its way, by
    request key: pending in the store (anyone's: a teammate's counts), younger than the service
    keeps it. Collecting it gives the same picture without paying for it again."""
    joinable = [request for request in requests if request.reproducible and request.api == "operations"]
    if store is None or not joinable:
        return {}
    since = datetime.now(timezone.utc) - KEPT
    return {key: record.operation_id for key, record in store.find_many(joinable, ("pending",)).items()
            if record.api == "operations" and record.submitted_at > since}


def found_meanwhile(store: Store, request: GenerationRequest, tried: Collection[str] = ()) -> Record | str | None:
    """What the store has of a reproducible request right before its start goes out (after waiting
    for its turn, or for a refused start's retry): its picture (another run made it meanwhile), else
    the operation of it another kernel or a teammate started meanwhile (not one ``tried`` already),
    else None: send it."""
    made = store.find_cached(request)
    if made is not None:
        return made
    operation_id = on_their_way(store, [request]).get(request_key(request))
    return operation_id if operation_id is not None and operation_id not in tried else None


def unfinished_item(record: Record, *, resend_lost: bool = False) -> Item | None:
    """What finishes a record still on its way: its operation id to collect (pending), or its intent
    to start again with the same Idempotency-Key (queued, or submitting with the answer lost).

    A synchronous request whose answer was lost (the Images API keeps nothing to collect) is sent
    again only with ``resend_lost``: it was billed on arrival, and sending it again bills again."""
    if record.status == "pending":
        return record.operation_id
    if record.answer_lost and not resend_lost:
        return None
    request = record.request()
    if record.status in ("queued", "submitting") and request is not None and record.idempotency_key:
        return Intent(request, record.idempotency_key, resend=record.status == "submitting")
    return None


def unfinished_items(store: Store, busy: Collection[str] = (), *, resend_lost: bool = False) -> list[Item]:
    """Every generation of the store still on its way (``resume --all``): pending operations, then
    the generations never answered, except those whose idempotency keys are ``busy`` (running here)
    and, unless ``resend_lost``, Images API requests whose answer was lost."""
    records = store.pending() + [r for r in store.unsent() if r.idempotency_key not in busy]
    return [item for record in records if (item := unfinished_item(record, resend_lost=resend_lost)) is not None]


def lost_answers(store: Store, busy: Collection[str] = ()) -> list[Record]:
    """Images API requests sent whose answer never came (``resume --all`` leaves them to the user)."""
    return [r for r in store.unsent() if r.answer_lost and r.idempotency_key not in busy]
