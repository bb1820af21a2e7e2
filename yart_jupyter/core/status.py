"""The live bookkeeping of one batch: what is started, done, failed; and its one-line texts."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Collect:
    """How a face says to collect what an interrupt left: one operation (``{op}`` for its id), every
    one, the list of what is unfinished, and what else collects them (None where the face has none)."""

    one: str
    every: str | None = None
    pending: str | None = None
    again: str | None = None


#: The states a generation's record can be in, as ``history --status`` takes them (the store's
#: ``STATUSES``, named here so that the faces' parsers need not import the store).
HISTORY_STATUSES = ("done", "failed", "cancelled", "expired", "pending", "queued", "submitting")

#: How the notebook face says it.
MAGIC_COLLECT = Collect("%yandexart resume {op}", "%yandexart resume --all", "%yandexart pending",
                        "running the cell again collects them too")
#: How the form says it (its Generate asks again).
FORM_COLLECT = dataclasses.replace(MAGIC_COLLECT, again="pressing Generate again collects them too")
#: How the ``yart`` command says it.
CLI_COLLECT = Collect("yart resume {op}", "yart resume --all", "yart pending")
#: How a script says it (the Python API collects one id at a time).
PYTHON_COLLECT = Collect("await yart_jupyter.resume('{op}')")


@dataclass
class BatchStatus:
    """Live bookkeeping of one batch of generations."""

    total: int
    started_at: float = field(default_factory=time.monotonic)
    operation_ids: list[str] = field(default_factory=list)
    finished_ids: set[str] = field(default_factory=set)
    failed: int = 0
    #: Operations that ended in a definitive failure (they no longer run on the server).
    failed_ids: set[str] = field(default_factory=set)
    retries: int = 0
    cached: int = 0
    #: Set when the user cancelled the job on purpose (not an interrupt of a waiting cell).
    cancelled_by_user: bool = False
    #: Generations whose start has not been answered yet (no operation id, no refusal).
    unsent: int = 0
    #: The idempotency keys of the batch's generations (they name the store's records).
    keys: list[str] = field(default_factory=list)
    #: When each operation started (monotonic seconds), for the time-left estimate.
    started: dict[str, float] = field(default_factory=dict)
    #: The learned model's median time still to wait for a generation running for so many seconds
    #: (None while the model has nothing to go on: a guess from its prior would mislead).
    estimate: Callable[[float], float | None] | None = field(default=None, repr=False)
    #: Show the rate (pictures a minute): a long batch's line says it.
    show_rate: bool = False
    #: Intents whose synchronous request (the Images API) is out, its answer not yet in.
    awaiting_answer: set[str] = field(default_factory=set)
    #: The Images API's median time still to wait for an answer whose request has been out so many
    #: seconds (None while nothing has been learned): its answers are no operation's.
    answer_estimate: Callable[[float], float | None] | None = field(default=None, repr=False)
    #: When each synchronous request went out (monotonic seconds), while its answer is awaited.
    sent: dict[str, float] = field(default_factory=dict)
    #: Synchronous requests queued, not sent yet.
    queued_sync: set[str] = field(default_factory=set)
    #: Pictures a synchronous request answered with (their ids), being stored: nothing to wait for.
    in_hand: set[str] = field(default_factory=set)
    #: Generations that joined the same picture already on its way (another run's): not paid again.
    joined_count: int = 0
    #: Of those, pictures an interrupted run paid for and nobody saw (see ``engine.arrivals``).
    unseen_taken: int = 0
    #: Operations joined by a second item of this very batch (two rows asking for one picture).
    twins: list[str] = field(default_factory=list)
    #: Synchronous requests out when the batch was cancelled, by key: their answers (pictures already
    #: paid for) still arrive and are kept in the store under these ids.
    arriving: dict[str, str] = field(default_factory=dict)

    def mark_started(self, operation_id: str) -> None:
        """An operation of the batch started on the server now."""
        self.operation_ids.append(operation_id)
        self.started.setdefault(operation_id, time.monotonic())

    # -- the one place each count changes --------------------------------------------------

    def queued(self, key: str, *, synchronous: bool = False) -> None:
        """A generation was recorded as asked for (``key`` names it); its start is not answered yet.
        ``synchronous``: its request is answered with the picture (the Images API)."""
        if key not in self.keys:
            self.keys.append(key)
            self.unsent += 1
            if synchronous:
                self.queued_sync.add(key)

    def submitting(self, key: str, *, synchronous: bool) -> None:
        """The start of ``key`` is going out; a synchronous request's answer is the picture itself."""
        self.queued_sync.discard(key)
        if synchronous:
            self.awaiting_answer.add(key)
            self.sent[key] = time.monotonic()

    def answered(self, key: str, operation_id: str) -> None:
        """The start of ``key`` was answered with an operation id: it runs on the server now."""
        self.awaiting_answer.discard(key)
        if self.sent.pop(key, None) is not None:
            self.in_hand.add(operation_id)
        self.mark_started(operation_id)
        self.unsent -= 1

    def joined(self, key: str, operation_id: str) -> None:
        """The generation ``key`` joins ``operation_id``, the same picture already on its way: its
        start is not sent, and it is done when that operation is."""
        self.joined_count += 1
        if operation_id in self.operation_ids:
            self.twins.append(operation_id)
            self.unsent -= 1
        else:
            self.answered(key, operation_id)

    def rejoined(self, key: str, operation_id: str | None) -> None:
        """What ``key`` joined (``operation_id``, if its start was answered) ended with nothing to
        collect: its start is to be sent after all."""
        if operation_id is None:
            return
        self.joined_count -= 1
        self.unsent += 1
        if operation_id in self.twins:
            self.twins.remove(operation_id)
        elif operation_id in self.operation_ids:
            self.operation_ids.remove(operation_id)
            self.started.pop(operation_id, None)

    def answered_from_store(self, key: str) -> None:
        """The generation ``key`` was about to be sent when the store got its picture (another run made
        it meanwhile): it is answered from there, and nothing is sent."""
        self.dropped(key)
        self.from_store()

    def dropped(self, key: str) -> None:
        """A queued generation will not be sent (the daily quota ran out): it no longer counts as running."""
        if key in self.keys:
            self.unsent -= 1
            self.queued_sync.discard(key)

    def from_store(self) -> None:
        """An item was answered without the service (the store had it, or an earlier run's file)."""
        self.cached += 1

    def failed_item(self, *, key: str | None = None, operation_id: str | None = None, answer_lost: bool = False,
                    settled: bool = False) -> None:
        """An item failed. ``key``: a start never answered with an id (no longer unsent; its answer
        still awaited if ``answer_lost``); ``settled``: the operation no longer runs on the server."""
        self.failed += 1
        if key is not None and not operation_id:
            self.unsent -= 1
            self.queued_sync.discard(key)
            self.sent.pop(key, None)
            if not answer_lost:
                self.awaiting_answer.discard(key)
        if operation_id and settled:
            self.failed_ids.add(operation_id)

    @property
    def done(self) -> int:
        return self.collected + self.cached

    @property
    def collected(self) -> int:
        """Pictures the service made for this batch (a picture two items joined counts twice)."""
        return len(self.finished_ids) + sum(op in self.finished_ids for op in self.twins)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def pending_ids(self) -> list[str]:
        """Operations started on the server and not yet collected."""
        return [op for op in self.operation_ids if op not in self.finished_ids and op not in self.failed_ids]

    @property
    def running(self) -> int:
        """Generations on their way: started and not collected, or their start not answered yet."""
        return len(self.pending_ids) + self.unsent

    def time_left(self) -> float | None:
        """Seconds until the last running generation is likely done (None: nothing to estimate)."""
        if not self.running:
            return None
        now = time.monotonic()
        waits = [_ask(self.estimate, now - self.started.get(op, now)) for op in self.pending_ids
                 if op not in self.in_hand]
        if self.unsent - len(self.sent) - len(self.queued_sync) > 0:  # operations to start
            waits.append(_ask(self.estimate, 0.0))
        waits += [_ask(self.answer_estimate, now - sent) for sent in self.sent.values()]
        if self.queued_sync:
            waits.append(_ask(self.answer_estimate, 0.0))
        known = [wait for wait in waits if wait is not None]
        return max(known) if known and len(known) == len(waits) else None

    def text(self) -> str:
        """One status line: progress, what runs, time left and elapsed, operation ids, retries."""
        parts = [f"YandexART · {self.done}/{self.total} done"]
        if self.running:
            parts.append(f"{self.running} running")
        if self.cached:
            parts.append(f"{self.cached} from the store")
        if self.failed:
            parts.append(f"{self.failed} failed")
        left = self.time_left()
        if self.show_rate and self.elapsed > 1 and self.finished_ids:
            per_second = len(self.finished_ids) / self.elapsed
            parts.append(f"{per_second * 60:.0f}/min")
            remaining = self.total - self.done - self.failed
            left = remaining / per_second if remaining > 0 else None
        if left is not None:
            parts.append(about_left(left))
        parts.append(f"{self.elapsed:.0f} s")
        pending = self.pending_ids
        if pending:
            more = f" +{len(pending) - 1}" if len(pending) > 1 else ""
            parts.append(f"op {pending[0]}{more}")
        elif self.awaiting_answer:
            parts.append("generating (Images API)")
        elif not self.operation_ids and self.done + self.failed < self.total:
            parts.append("starting")
        if self.retries:
            parts.append(f"{self.retries} retr{'y' if self.retries == 1 else 'ies'}")
        return " · ".join(parts)

    def fractions(self) -> tuple[float, float, float, float]:
        """Shares of the total that are done, from the store, failed and running (a progress bar's parts)."""
        total = max(1, self.total)
        return (self.collected / total, self.cached / total, self.failed / total,
                min(self.running, self.total) / total)

    def interrupted_line(self, collect: Collect = MAGIC_COLLECT) -> str:
        """:meth:`interrupted_text` as one line, for a view that shows it in place."""
        message, hint = self.interrupted_text(collect)
        return f"{message}. {hint}" if hint else message

    def interrupted_text(self, collect: Collect = MAGIC_COLLECT) -> tuple[str, str]:
        """(message, hint) for an interrupt or a cancel: which operations still run, which Images API
        answers (already paid for) still arrive, and how to collect them in the face's own words."""
        pending = self.pending_ids
        arriving = list(self.arriving.values())
        lost = len(self.awaiting_answer - set(self.arriving))
        coming = ""
        if arriving:
            many = len(arriving) > 1
            coming = (f"{len(arriving)} Images API picture{'s' if many else ''} already paid for (the request had "
                      f"gone out) {'are' if many else 'is'} still coming and kept in the store: {', '.join(arriving)}")
        shown = f"`{collect.one.format(op=arriving[0])}` shows it once it is in" if arriving else ""
        if lost and not pending and not arriving:
            listed = f"{collect.pending} lists it; " if collect.pending else ""
            resend = collect.every or "resume --all (the magic or yart)"
            return (f"Interrupted; {lost} request{'s' if lost > 1 else ''} to the Images API "
                    f"{'were' if lost > 1 else 'was'} sent and the answer is lost (it may be billed; the service "
                    "keeps nothing to collect)", f"{listed}`{resend} --resend-lost` sends it again if you decide to")
        if self.cancelled_by_user:
            ids = f": {', '.join(pending)} asked to stop on the server" if pending else ""
            return f"Cancelled{ids}" + (f"; {coming}" if coming else ""), shown
        if not pending:
            if coming:
                return f"Interrupted; {coming}", shown + (f"; {collect.again}" if collect.again else "")
            return "Interrupted; no generation had started on the server", ""
        message = (
            f"Interrupted; {len(pending)} operation{'s are' if len(pending) > 1 else ' is'} still running "
            f"on the server: {', '.join(pending)}" + (f"; {coming}" if coming else "")
        )
        every = f", or `{collect.every}`" if collect.every else ""
        hint = f"Collect with `{collect.one.format(op=pending[0])}`" + (
            f" (one id at a time{every})" if len(pending) > 1 else "") + (f"; {shown}" if shown else "") + (
            f"; {collect.again}" if collect.again else "")
        return message, hint


def _ask(estimate: Callable[[float], float | None] | None, elapsed: float) -> float | None:
    """An estimate's time still to wait after ``elapsed`` seconds (None without one)."""
    return None if estimate is None else estimate(elapsed)


def about_left(seconds: float) -> str:
    """A time-left estimate as people say it: "about 9 s left", "about 2 min left"."""
    if seconds < 1.5:
        return "about 1 s left"
    if seconds < 90:
        return f"about {seconds:.0f} s left"
    return f"about {seconds / 60:.0f} min left"
