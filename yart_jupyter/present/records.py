"""The store's records as tables: history with thumbnails, experiments, pending generations."""

from __future__ import annotations

import base64
import html
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from .html import Bundle, table_html


class Entry(Protocol):
    """What a history or pending row shows: a store Record, as far as display is concerned."""

    @property
    def operation_id(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def prompt(self) -> str: ...

    @property
    def seed(self) -> int | None: ...

    @property
    def aspect(self) -> str | None: ...

    @property
    def submitted_at(self) -> datetime: ...

    @property
    def duration(self) -> float | None: ...

    @property
    def api(self) -> str: ...

    @property
    def error(self) -> str | None: ...

    @property
    def owner(self) -> str | None: ...

    @property
    def answer_lost(self) -> bool: ...


def why(record: Entry, limit: int = 60) -> str:
    """What a record that did not end in a picture says first of why ("Access to the model denied",
    "not sent", "interrupted before it was sent"), short enough for a history line; "" otherwise."""
    if record.status == "done" or not record.error:
        return ""
    first = record.error.split(": ")[0].split(". ")[0].rstrip(".")
    stopped_by = re.search(r"\(([^()]+)\)", record.error) if first == "not sent" else None
    if stopped_by:  # a NotSentError: its kind was refused so
        first = f"not sent ({stopped_by.group(1)})"
    return first if len(first) <= limit else first[: limit - 1] + "…"


def state(record: Entry) -> str:
    """A record's state, with why when it says why ("failed: Access to the model denied")."""
    return f"{record.status}: {why(record)}" if why(record) else record.status


def filter_words(search: str | None, status: str | None) -> str:
    """What a history was asked to match, as an empty answer says it ("'fox' and --status failed")."""
    return " and ".join(part for part in (repr(search) if search else "", f"--status {status}" if status else "")
                        if part)


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def history_bundle(records: Sequence[Entry], thumbnails: Sequence[bytes | None],
                   numbers: Mapping[str, int]) -> Bundle:
    """A gallery of thumbnails with prompt, seed, aspect, time and duration, each of mine with its
    number in my history (``numbers``, by operation id: what ``#N`` names in compare and rerun)."""
    cells = []
    lines = []
    for record, thumb in zip(records, thumbnails, strict=True):
        duration = f"{record.duration:.1f} s" if record.duration is not None else ""
        number = f"#{numbers[record.operation_id]}" if record.operation_id in numbers else ""
        meta = " · ".join(str(p) for p in (
            number, f"seed {record.seed}" if record.seed is not None else "", record.aspect or "",
            _when(record.submitted_at), duration,
            state(record) if record.status != "done" else "",
            record.operation_id,
            made_by(record),
        ) if p)
        picture = (
            f'<img src="data:image/jpeg;base64,{base64.b64encode(thumb).decode("ascii")}" '
            'style="width:100%;height:auto;border-radius:3px">'
            if thumb else '<div style="height:120px;display:flex;align-items:center;justify-content:center;'
            f'opacity:.6;font:12px monospace">{html.escape(record.status)}</div>'
        )
        cells.append(
            '<figure style="margin:0 10px 10px 0;display:inline-block;vertical-align:top;width:200px">'
            f'{picture}<figcaption style="font:11px/1.35 monospace;opacity:.8">'
            f"{html.escape(record.prompt[:90])}<br>{html.escape(meta)}</figcaption></figure>"
        )
        lines.append(f"{meta}  {record.prompt[:70]}")
    return {"text/html": f'<div class="yart-history">{"".join(cells)}</div>', "text/plain": "\n".join(lines)}


class Sweep(Protocol):
    """What a line of ``%yandexart history --experiments`` shows: a store ExperimentRecord."""

    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def title(self) -> str: ...

    @property
    def axes(self) -> tuple[tuple[str, tuple[Any, ...]], ...]: ...

    @property
    def items(self) -> tuple[tuple[tuple[Any, ...], str], ...]: ...


def experiments_bundle(experiments: Sequence[Sweep]) -> Bundle:
    """The store's sweeps, newest first: id, time, shape and title, and how to show one again."""
    rows = []
    for e in experiments:
        shape = " × ".join(f"{name} {len(values)}" for name, values in e.axes)
        rows.append((e.id, _when(e.created_at), f"{len(e.items)} ({shape})", e.title[:80]))
    hint = "Show one again as its grid: %yandexart history --experiment ID"
    table = table_html(("id", "made", "cells", "prompt"), rows, "yart-experiments")
    return {"text/html": f'{table}<div style="font:12px monospace;opacity:.8">{hint}</div>',
            "text/plain": "\n".join([*("  ".join(row) for row in rows), hint])}


#: What ``%yandexart pending`` says of each state, and what ``resume --all`` will do with it.
PENDING_STATES = {
    "queued": "queued: never sent (resume --all starts it)",
    "submitting": "start sent, answer unknown (resume --all re-sends it with the same Idempotency-Key)",
    "pending": "not collected",
}


#: The state of a synchronous request sent whose answer never came.
LOST_STATE = ("sent, answer lost (the Images API keeps nothing to collect; resume --all --resend-lost sends it "
              "again, which may bill it twice)")
#: How long a request sent with no answer recorded (and no loss said) may still be in another
#: kernel's or command's hands: a generation takes seconds, a request's timeout a minute or more.
STILL_OUT = 600.0


def pending_state(record: Entry) -> str:
    """How ``pending`` describes a record still on its way; an operation the service no longer keeps is
    said to have expired."""
    age = time.time() - record.submitted_at.timestamp()
    if record.answer_lost and not record.error and age < STILL_OUT:  # elsewhere, maybe still being received
        ago = f"{age:.0f} s" if age < 90 else f"{age / 60:.0f} min"
        return (f"sent {ago} ago, no answer recorded: the kernel or command that sent it may still "
                "be receiving it; if that one stopped, the answer was lost (resume --all --resend-lost sends it "
                "again, which may bill it twice)")
    if record.answer_lost:
        return LOST_STATE
    if record.status == "pending" and record.submitted_at.timestamp() < time.time() - 3 * 86400:
        return "expired on the server (results are kept 3 days)"
    return PENDING_STATES.get(record.status, record.status)


def made_by(record: Entry) -> str:
    """``by NAME`` for a teammate's record (nothing for mine)."""
    from ..core.identity import user_name

    return f"by {record.owner}" if record.owner and record.owner != user_name() else ""


def records_table(records: Sequence[Entry], running_here: set[str]) -> Bundle:
    """A table of records (for ``%yandexart pending``): operations, then generations never started; a
    teammate's (``--team``) are named, and collected only by their id."""
    rows = []
    plain = []
    elsewhere = 0  # left by an earlier session: what resume --all is for
    for r in records:
        unsent = r.status in ("queued", "submitting")
        here = r.operation_id in running_here
        elsewhere += not here
        note = "in progress in this kernel" if here else pending_state(r)
        if made_by(r):
            note = f"{made_by(r)}: theirs to finish (or collect it by its id)"
        cells = ("(no id yet)" if unsent else r.operation_id, _when(r.submitted_at),
                 str(r.seed) if r.seed is not None else "no seed" if r.api == "images" else "", r.aspect or "",
                 r.prompt[:60], note)
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        plain.append("  ".join(cells))
    header = "".join(f"<th>{h}</th>" for h in ("operation", "submitted", "seed", "aspect", "prompt", "state"))
    hint = ("Collect or finish them with %yandexart resume --all (or one operation id at a time)." if elsewhere
            else "They are running in this kernel and arrive on their own (%yandexart jobs shows them).")
    return {
        "text/html": f'<table class="yart-pending" style="font:12px monospace"><tr>{header}</tr>{"".join(rows)}</table>'
                     f'<div style="font:12px monospace;opacity:.8">{hint}</div>',
        "text/plain": "\n".join([*plain, hint]),
    }
