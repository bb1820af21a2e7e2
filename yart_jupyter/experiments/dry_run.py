"""``--dry-run``: every generation a cell, a sweep or ``yart generate`` would make and what it costs —
which the store answers for free, which are on their way already, the quota the rest take. Nothing is
recorded or sent.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from ..core.config import REUSE_SETTING, Settings
from ..core.request import GenerationRequest
from ..present.html import Bundle, message_bundle, table_html
from ..present.quota import quota_line
from ..store import Store, request_key
from .experiment import Experiment, Slot
from .grid import GridSource
from .sweep import Axis


def plain_experiment(requests: Sequence[GenerationRequest]) -> Experiment:
    """Generations that are no sweep shown like one: their seeds (or samples #1…#N) are its one axis."""
    if requests[0].seed is None:
        keys: list[Any] = [f"#{n}" for n in range(1, len(requests) + 1)]
        axis = Axis("sample", tuple(keys))
    else:
        keys = [r.seed for r in requests]
        axis = Axis("seed", tuple(keys))
    return Experiment(requests[0].prompt, [axis], [Slot((k,), r) for k, r in zip(keys, requests, strict=True)])


def dry_run(store: Store, settings: Settings, requests: Sequence[GenerationRequest], *,
            experiment: Experiment | None = None, no_cache: bool = False, limit_note: str | None = None) -> Bundle:
    """The plan of ``requests`` (the slots of ``experiment`` when it is a sweep) as a table and a summary."""
    from ..engine import on_their_way, reusable_samples, stored_answers
    from ..engine.arrivals import ARRIVALS, place, sample_key

    cached = [answer is not None for answer in stored_answers(
        store, requests, use_cache=not no_cache, reuse_samples=settings.reuse_samples)]
    on_way = {} if no_cache else on_their_way(
        store, [request for request, hit in zip(requests, cached, strict=True) if not hit])
    joining = [not hit and request_key(request) in on_way for request, hit in zip(requests, cached, strict=True)]
    unseen: dict[str, int] = {}  # pictures an interrupted run of this process paid for: taken, not paid again
    where = place(settings.base_url, settings.folder_id)
    for number, (request, hit) in enumerate(zip(requests, cached, strict=True)):
        if not (no_cache or hit or joining[number]):
            key = sample_key(request, where)
            left = unseen.setdefault(key, ARRIVALS.claimable(request, where))
            joining[number], unseen[key] = left > 0, max(0, left - 1)
    quota = quota_line(len(cached) - sum(cached) - sum(joining), settings.generations_per_minute,
                       settings.generations_per_day)
    reusable = 0 if settings.reuse_samples or no_cache else reusable_samples(store, requests)
    return plan_bundle(experiment or plain_experiment(requests), cached, quota, limit_note, reusable, joining)


def plan_bundle(experiment: GridSource, cached: Sequence[bool], quota: str, limit_note: str | None,
                reusable: int = 0, joining: Sequence[bool] = ()) -> Bundle:
    """``--dry-run``: every generation the sweep would make, and what it costs; nothing is sent.
    ``reusable``: how many to send the store has samples of (a model without seeds), said with the
    setting that would show those at no cost; ``joining``: which are on their way already (another
    run's pending operation, collected at no cost)."""
    names = [axis.name for axis in experiment.axes]
    header = [*names, "prompt", *(["seed"] if "seed" not in names else []), "aspect", "from the store"]
    rows = []
    joining = list(joining) or [False] * len(cached)
    for slot, hit, joins in zip(experiment.slots, cached, joining, strict=True):
        request = slot.request
        assert request is not None
        weights = " · ".join(f"{m.weight:g}" for m in request.messages) if len(request.messages) > 1 else ""
        prompt = request.prompt + (f"  (weights {weights})" if weights else "")
        seed = [] if "seed" in names else [str(request.seed) if request.seed is not None else "no seed"]
        labels = experiment.labels(slot)
        if "seed" in labels and request.seed is None:  # a model without seeds in a sweep over models: a sample
            labels["seed"] = "no seed (a sample)"
        rows.append([*labels.values(), prompt, *seed, str(request.aspect),
                     "yes" if hit else "on its way" if joins else ""])
    hits, joined = sum(cached), sum(joining)
    on_way = f"{joined} on its way already (another run's: collected for free), " if joined else ""
    summary = (f"{experiment.size} generation{'s' if experiment.size != 1 else ''} ({experiment.shape()}); "
               f"{hits} from the local store for free, {on_way}"
               f"{experiment.size - hits - joined} to send; {quota}. Nothing was sent (--dry-run).")
    if reusable:
        summary += (f" The store has samples of {reusable} of those to send: {REUSE_SETTING} shows them at "
                    "no cost.")
    warning = message_bundle(limit_note, "warning")["text/html"] if limit_note else ""
    plain_rows = ["\t".join(header), *("\t".join(row) for row in rows)]
    return {"text/html": f'<div class="yart-plan"><div class="yart-grid-title" style="font:600 13px sans-serif">'
                         f"{html.escape(experiment.title)}</div>{table_html(header, rows)}"
                         f'<div style="font:12px monospace;margin-top:4px">{html.escape(summary)}</div>{warning}</div>',
            "text/plain": "\n".join([experiment.title, *plain_rows, summary, *([limit_note] if limit_note else [])])}
