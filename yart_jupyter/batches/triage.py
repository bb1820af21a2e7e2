"""What a run does with each valid row of a batch, decided before anything is sent or recorded.

One decision from the row's file, the dataset's ``metadata.jsonl`` and the store: the run acts on
it, and a dry run shows it. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..core.request import GenerationRequest
from ..engine import Intent, Item, on_their_way, unfinished_item
from ..store import Record, Store, request_key
from .dataset import Metadata, carries_recipe
from .plan import Row, TablePlan

#: What happens to a valid row: made in an earlier run (its file and metadata line are there); its
#: file is someone else's (the row fails, the file is never overwritten); sent with the answer lost
#: (not sent again without ``resend_lost``); an operation still on the server to collect (an earlier
#: run's, or another kernel's or a teammate's generation of the same seeded request); a start
#: that went out before, sent again with its key (the service deduplicates on it); a start recorded
#: before and never sent (it goes out with its recorded key); or new to this run (the store may
#: answer it: see :func:`answered`).
Fate = Literal["earlier", "clash", "lost", "collect", "resend", "queued", "new"]


@dataclass
class Decision:
    """A valid row, what a run does with it, and what it hands the engine (for collect, resend, new)."""

    row: Row
    fate: Fate
    item: Item
    #: The store's record of an earlier run's generation of this row (collect, resend, lost).
    record: Record | None = None


def triage(batch: TablePlan, store: Store, metadata: Metadata | None, *, resend_lost: bool) -> list[Decision]:
    """Every valid row's fate, in row order."""
    decisions: list[Decision] = []
    for row in batch.valid:
        request = row.request
        assert request is not None
        if row.path is not None and row.path.exists():
            relative = row.path.resolve().relative_to(batch.root.resolve()).as_posix() if batch.root else ""
            if metadata is not None and metadata.has(relative, request):
                decisions.append(Decision(row, "earlier", request))
                continue
            if not carries_recipe(row.path, request):
                decisions.append(Decision(row, "clash", request))
                continue
            # its metadata line was cut off (a kill between the two writes): the store answers it
        decisions.append(Decision(row, "new", request))
    asked = [d.row.request for d in decisions if d.fate == "new" and isinstance(d.row.request, GenerationRequest)]
    unfinished = store.find_unfinished(asked)
    elsewhere = on_their_way(store, [r for r in asked if request_key(r) not in unfinished])
    for decision in decisions:
        key = request_key(decision.item) if decision.fate == "new" and isinstance(
            decision.item, GenerationRequest) else None
        record = unfinished.get(key) if key is not None else None
        if key in elsewhere:  # another kernel's or a teammate's generation of it is on its way
            decision.item, decision.fate = elsewhere[key], "collect"
            continue
        if record is None:
            continue
        decision.record = record
        item = unfinished_item(record, resend_lost=resend_lost)
        if record.answer_lost and not resend_lost:
            decision.fate = "lost"
        elif item is not None:
            decision.item = item
            decision.fate = ("collect" if not isinstance(item, Intent) else "resend" if item.resend else "queued")
    return decisions


def answered(store: Store, decisions: Sequence[Decision]) -> set[int]:
    """The rows (by number) among the new ones that the store answers for free: it has their picture."""
    asked = [(d.row.number, d.item) for d in decisions
             if d.fate == "new" and isinstance(d.item, GenerationRequest) and d.item.seed_was_given]
    found = store.find_many([request for _, request in asked], ("done",))
    return {number for number, request in asked if request_key(request) in found}
