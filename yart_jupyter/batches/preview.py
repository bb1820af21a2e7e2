"""A batch's dry run: what a run would do with every row and what it would cost; nothing is sent.

A table of thousands of rows can take a day's quota; before paying, a user sees how many rows an
earlier run made, how many the store answers for free, how many are still on the server, how many
it would start, and whether the day's quota (as the store has counted it) lets them all start today.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.config import Settings
from ..present.quota import quota_line
from ..store import Store
from .dataset import Metadata
from .plan import Row, TablePlan
from .run import Budget
from .triage import answered, triage

#: What a run would do with a row, as the preview says it (in this order in its summary).
PLANS: dict[str, str] = {
    "earlier": "made in an earlier run",
    "store": "from the store, free",
    "collect": "collected (still on the server)",
    "start": "to start",
    "queued": "to start (recorded earlier, never sent)",
    "resend": "sent again with its key (the service deduplicates it)",
    "lost": "with the answer lost (not sent again without --resend-lost, resend_lost=True)",
    "clash": "failing on a file this batch did not make (never overwritten)",
    "invalid": "invalid, skipped",
}
#: The plans that send a start (a re-sent one may be deduplicated: the figure is at most).
SENDS = ("start", "queued", "resend")
#: How many rows the HTML table shows (every row is in ``records()``).
SHOWN = 50


@dataclass
class BatchPreview:
    """``batch(..., dry_run=True)`` and ``yart batch --dry-run``: every row's plan and the quota it
    takes (``records()``, ``summary()``); nothing was sent or recorded."""

    rows: list[Row]
    plans: dict[int, str]
    root: Path | None
    per_minute: int
    #: The day's quota as the store counted it (the starts of the last 24 hours).
    day: Budget

    @property
    def to_send(self) -> int:
        """Starts a run would send (at most: a re-sent start may be deduplicated by the service)."""
        return sum(plan in SENDS for plan in self.plans.values())

    def counts(self) -> dict[str, int]:
        """Rows per plan, in the order the summary says them; plans no row has are left out."""
        counted = {plan: sum(p == plan for p in self.plans.values()) for plan in PLANS}
        return {plan: n for plan, n in counted.items() if n}

    def records(self) -> list[dict[str, Any]]:
        """A dict per row: row, prompt, seed, aspect, file, plan (and the reason of an invalid one)."""
        return [{**{k: v for k, v in row.record().items() if k in ("row", "prompt", "seed", "aspect", "file")},
                 "plan": self.plans[row.number], "error": row.error} for row in self.rows]

    def summary(self) -> str:
        """One paragraph: the rows by plan, the quota the starts take, the day's room; nothing sent."""
        parts = ", ".join(f"{n:,} {PLANS[plan]}" for plan, n in self.counts().items())
        text = f"{len(self.rows):,} row{'s' if len(self.rows) != 1 else ''}: {parts}"
        if self.root is not None:
            text += f"; dataset in {self.root}"
        if not self.to_send:
            return text + ". Nothing to send: it takes no quota (dry run)."
        quota = quota_line(self.to_send, self.per_minute, self.day.limit)
        text += f". {quota[0].upper()}{quota[1:]}"
        left = self.day.left
        if self.to_send > left:
            text += (f"; the store counts {self.day.used:,} starts in the last 24 hours, so {left:,} can start "
                     f"today and {self.to_send - left:,} wait for a later run (it continues where it stopped)")
        return text + ". Nothing was sent (dry run)."

    def lines(self) -> list[str]:
        """The plan as plain text: a tab-separated line per row, then the summary (``yart batch --dry-run``)."""
        out = ["row\tplan\tseed\tfile\tprompt"]
        for record in self.records():
            plan = record["plan"] + (f": {record['error']}" if record["error"] else "")
            out.append("\t".join(str(v) if v is not None else "" for v in
                                 (record["row"], plan, record["seed"], record["file"], record["prompt"])))
        return [*out, self.summary()]

    def _repr_html_(self) -> str:
        import html

        from ..present.html import table_html

        shown = [(r["row"], r["plan"] + (f": {r['error']}" if r["error"] else ""), r["seed"],
                  (r["prompt"] or "")[:60], r["file"]) for r in self.records()[:SHOWN]]
        table = table_html(("row", "plan", "seed", "prompt", "file"), shown)
        more = (f"<div>… and {len(self.rows) - SHOWN:,} more rows (.records())</div>"
                if len(self.rows) > SHOWN else "")
        return (f'<div class="yart-batch-plan" style="font:12px monospace">{table}{more}'
                f"<div>{html.escape(self.summary())}</div></div>")

    def __repr__(self) -> str:
        return f"BatchPreview({self.summary()})"


def preview_table(batch: TablePlan, store: Store, settings: Settings, *, resend_lost: bool = False) -> BatchPreview:
    """What :func:`~.run.run_table` would do with ``batch``, read from its files and the store; nothing
    is sent, recorded or written."""
    metadata = Metadata(batch.root) if batch.root is not None else None
    decisions = triage(batch, store, metadata, resend_lost=resend_lost)
    free = answered(store, decisions)
    plans = {row.number: "invalid" for row in batch.rows if row.status == "invalid"}
    for decision in decisions:
        fate = decision.fate
        plans[decision.row.number] = ("store" if decision.row.number in free else "start") if fate == "new" else fate
    return BatchPreview(batch.rows, plans, batch.root, settings.generations_per_minute, Budget.today(store, settings))
