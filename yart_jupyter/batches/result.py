"""What a batch made: a row per table row, a summary, and the results table (drawn once in a notebook)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from .plan import Row, RowState, rows_named

#: The support id a service refusal ends with: rows refused alike differ only by it.
_REQUEST_ID = re.compile(r" \[request id [\w-]+\]$")


def row_lines(rows: list[Row], states: tuple[str, ...] = ("failed", "lost")) -> list[str]:
    """The rows in ``states``, one line per distinct reason ("rows 3, 5 and 9: …", the first row's
    request id kept): a refusal many rows met is said once. Errors naming an operation or an intent
    (which every row needs to be collected) are never merged."""
    reasons: dict[str, list[Row]] = {}
    for row in rows:
        if row.status in states:
            reasons.setdefault(_REQUEST_ID.sub("", row.error or ""), []).append(row)
    return [f"{rows_named([row.number for row in same])}: {same[0].error}" for same in reasons.values()]


#: What a finished batch's row can be.
ROW_STATES: tuple[RowState, ...] = get_args(RowState)[1:]


@dataclass
class BatchResult:
    """What a batch made: a row per table row (``.records()``, ``.to_pandas()``), and a summary."""

    rows: list[Row]
    root: Path | None = None
    quota_note: str | None = None
    elapsed: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    #: The execution count of the cell whose progress line became this table (None: not drawn yet).
    shown_in: int | None = None

    def records(self) -> list[dict[str, Any]]:
        return [row.record() for row in self.rows]

    def to_pandas(self) -> Any:
        """The results table as a DataFrame (pandas is optional: ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas (records() gives the same rows)") from None
        return pd.DataFrame(self.records())

    @property
    def left(self) -> int:
        """Rows not made yet (the quota stopped them, an interrupt, a failure): the next run's work."""
        return sum(row.status in ("quota", "interrupted", "failed", "lost", "queued", "stopped") for row in self.rows)

    def summary(self) -> str:
        counts = {state: sum(row.status == state for row in self.rows) for state in ROW_STATES}
        words = {"done": "generated", "cached": "from the store", "earlier": "done in an earlier run",
                 "failed": "failed", "invalid": "invalid (skipped)", "quota": "left for the quota",
                 "interrupted": "interrupted", "lost": "sent with the answer lost (not re-sent)",
                 "stopped": "not sent (the service refused a failed row's kind: they would fail alike)"}
        parts = [f"{n} {words[state]}" for state, n in counts.items() if n]
        text = f"{len(self.rows)} rows: " + ", ".join(parts) + f" in {self.elapsed:.0f} s"
        if self.root is not None:
            text += f"; dataset in {self.root}"
        return text + (f". {self.quota_note}" if self.quota_note else "") + self._versions_note()

    def _versions_note(self) -> str:
        """A dataset made across a model update (a run resumed days later): the same seed on another
        version is another picture, so its rows are not one experiment; said with the rows' counts."""
        versions = Counter(row.model_version for row in self.rows
                           if row.model_version and row.status in ("done", "cached", "earlier"))
        if len(versions) < 2:
            return ""
        counts = ", ".join(f"{version}: {n} row{'s' if n > 1 else ''}" for version, n in sorted(versions.items()))
        return (f". ⚠ the pictures come from {len(versions)} model versions ({counts}): the same seed on "
                "another version is a different picture")

    def _repr_html_(self) -> str:
        import html

        from ..present.html import table_html

        rows = [(r.number, r.status, r.request.seed if r.request else None,
                 (r.request.prompt if r.request else "")[:60], r.path, r.error) for r in self.rows[:50]]
        table = table_html(("row", "status", "seed", "prompt", "file", "error"), rows)
        more = f"<div>… and {len(self.rows) - 50} more rows (.records())</div>" if len(self.rows) > 50 else ""
        return (f'<div class="yart-batch-result" style="font:12px monospace"><div>{html.escape(self.summary())}</div>'
                f"{table}{more}</div>")

    def __repr__(self) -> str:
        return f"BatchResult({self.summary()})"

    def _ipython_display_(self) -> None:
        """The results table, unless the cell that ran the batch drew it already (its progress line
        became the table): the value as that cell's last line would draw it twice."""
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        if self.shown_in is not None and shell is not None and shell.execution_count == self.shown_in:
            return
        display({"text/html": self._repr_html_(), "text/plain": repr(self)}, raw=True)  # type: ignore[no-untyped-call]
