"""Reading the store: one record, the cache, what is unfinished, history, and what the schedule learns from."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from ..core.identity import user_name
from ..core.request import GenerationRequest, Message
from .database import Database
from .records import Record, request_key

NEWEST_FIRST = "submitted_at DESC, operation_id DESC"  # one order for history and its numbers, ties too


class Queries(Database):
    """Every read of the ``generations`` table."""

    def _select(self, where: str = "TRUE", args: Sequence[Any] = (), limit: int | None = None, *,
                images: bool = True) -> list[Record]:
        """Records matching ``where``, newest first; with ``images``, each done one's picture on this machine."""
        sql = f"SELECT * FROM generations WHERE {where} ORDER BY {NEWEST_FIRST}"
        if limit is not None:  # a negative limit is none in SQLite and an error in PostgreSQL: no rows in both
            sql += f" LIMIT {max(0, int(limit))}"
        records = [self._record(row) for row in self._query(sql, args)]
        return self._with_images(records) if images else records

    def _with_images(self, records: list[Record]) -> list[Record]:
        """Make sure each done record's picture is on this machine (a team store fetches the missing ones)."""
        return records

    def _mine(self, team: bool) -> tuple[str, list[Any]]:
        """The clause that keeps my records in a team's store (``team``: everyone's); records from
        before owners count as mine, and every record of a local store is mine."""
        return ("TRUE", []) if team or not self.shared else ("(owner=? OR owner IS NULL)", [user_name()])

    def _record(self, row: Any) -> Record:
        messages = tuple(Message(text, weight) for text, weight in json.loads(row["messages"] or "[]"))
        return Record(
            operation_id=row["operation_id"], status=row["status"], prompt=row["prompt"], messages=messages,
            seed=row["seed"], seed_given=bool(row["seed_given"]), aspect=row["aspect"], mime_type=row["mime_type"],
            model_uri=row["model_uri"],
            submitted_at=datetime.fromtimestamp(row["submitted_at"], timezone.utc),
            finished_at=datetime.fromtimestamp(row["finished_at"], timezone.utc) if row["finished_at"] else None,
            error=row["error"], model_version=row["model_version"],
            image_path=self.images / row["image_file"] if row["image_file"] else None,
            width=row["width"], height=row["height"], bytes=row["bytes"], notebook=row["notebook"],
            idempotency_key=row["idempotency_key"], api=row["api"] or "operations",
            revised_prompt=row["revised_prompt"], owner=row["owner"], host=row["host"],
        )

    def get(self, operation_id: str) -> Record | None:
        found = self._select("operation_id=?", (operation_id,))
        return found[0] if found else None

    def find(self, reference: str) -> Record | None:
        """A record by operation id or by the idempotency key its start carried."""
        found = self._select("operation_id=? OR idempotency_key=?", (reference, reference), limit=1)
        return found[0] if found else None

    def find_intent(self, prefix: str) -> Record | None:
        """The newest record whose idempotency key starts with ``prefix`` (an Images API picture's id
        names its intent by the key's first digits)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found = self._select("idempotency_key LIKE ? ESCAPE '\\'", (escaped + "%",), limit=1)
        return found[0] if found else None

    def find_cached(self, request: GenerationRequest) -> Record | None:
        """A finished record of exactly this request, whose image file is still there."""
        return self.find_many([request], ("done",)).get(request_key(request))

    def find_many(self, requests: Sequence[GenerationRequest], statuses: Sequence[str], *,
                  team: bool = True) -> dict[str, Record]:
        """The newest record in one of ``statuses`` of each request, by request key, in a few queries
        (a done record counts only while its picture is there); anyone's, or with ``team=False`` mine."""
        return {key: records[0] for key, records in self.find_all(requests, statuses, team=team).items()}

    def find_all(self, requests: Sequence[GenerationRequest], statuses: Sequence[str], *,
                 team: bool = True) -> dict[str, list[Record]]:
        """Every record in one of ``statuses`` of each request, newest first, by request key (the
        samples a model without seeds made of one request); as :meth:`find_many` otherwise."""
        keys = list(dict.fromkeys(request_key(r) for r in requests))
        found: dict[str, list[Record]] = {}
        marks = ", ".join("?" for _ in statuses)
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            mine, mine_args = self._mine(team)
            where = f"request_key IN ({', '.join('?' for _ in chunk)}) AND status IN ({marks}) AND {mine}"
            rows = self._query(f"SELECT * FROM generations WHERE {where} ORDER BY submitted_at DESC",
                               [*chunk, *statuses, *mine_args])
            records = self._with_images([self._record(row) for row in rows])
            for row, record in zip(rows, records, strict=True):
                usable = record.status != "done" or (record.image_path is not None and record.image_path.exists())
                if usable:
                    found.setdefault(row["request_key"], []).append(record)
        return {key: _runs_in_order(records) for key, records in found.items()}

    def find_unfinished(self, requests: Sequence[GenerationRequest]) -> dict[str, Record]:
        """The newest generation of each request still on its way, by request key: pending on the
        server (an operation id), or asked for and never answered (queued, submitting); mine only
        (a teammate's unfinished generations stay theirs to finish)."""
        return self.find_many(requests, ("pending", "queued", "submitting"), team=False)

    def pending(self, *, team: bool = False) -> list[Record]:
        """Operations the service has (an operation id) that were never collected: mine, or everyone's."""
        mine, args = self._mine(team)
        return self._select(f"status='pending' AND {mine}", args)

    def unsent(self, *, team: bool = False) -> list[Record]:
        """Generations asked for whose operation id was never recorded (queued, or submitting): mine,
        or everyone's."""
        mine, args = self._mine(team)
        return self._select(f"status IN ('queued', 'submitting') AND {mine}", args)

    def history(self, limit: int | None = 20, search: str | None = None, status: str | None = None, *,
                team: bool = False) -> list[Record]:
        """The newest records first, mine or (``team``) everyone's; ``search`` matches the prompt
        (case-insensitive)."""
        mine, mine_args = self._mine(team)
        clauses, args = [mine], list(mine_args)
        if search:
            clauses.append("LOWER(prompt) LIKE LOWER(?) ESCAPE '\\'")
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args.append(f"%{escaped}%")
        if status:
            clauses.append("status=?")
            args.append(status)
        return self._select(" AND ".join(clauses), args, limit)

    def numbers(self, records: Sequence[Record]) -> dict[str, int]:
        """Each of my ``records``' number in my history (``#1``: my newest), as :meth:`entry` reads it,
        by operation id, whatever list they were shown in (a search, a state, a team's history, whose
        other members' records have none): ``#N`` names one generation everywhere."""
        if not records:
            return {}
        mine, args = self._mine(False)
        oldest = min(record.submitted_at for record in records).timestamp() - 1  # a stored time has more digits
        rows = self._query(f"SELECT operation_id FROM generations WHERE {mine} AND submitted_at >= ? "
                           f"ORDER BY {NEWEST_FIRST}", [*args, oldest])
        wanted = {record.operation_id for record in records}
        return {row[0]: number for number, row in enumerate(rows, 1) if row[0] in wanted}

    def entry(self, reference: str) -> Record | None:
        """The record a history entry names (``#2``: my second newest, as ``history`` numbers them), or
        None when ``reference`` is not ``#N``; a LookupError when the history is shorter."""
        match = re.fullmatch(r"#?(\d{1,4})", reference.strip())
        if match is None:
            return None
        number = int(match.group(1))
        records = self.history(max(number, 1))
        if number < 1 or len(records) < number:
            raise LookupError(f"history has no entry #{number} (it has {len(records)})")
        return records[number - 1]

    def starts_since(self, moment: float) -> tuple[int, float | None]:
        """How many generations were started (sent) since ``moment`` (epoch seconds), and the oldest
        start among them: what the folder's daily quota has counted."""
        rows = self._query("SELECT COUNT(*), MIN(submitted_at) FROM generations WHERE submitted_at >= ?"
                           " AND status NOT IN ('queued') AND operation_id NOT LIKE 'intent:%'", (moment,))
        count, oldest = rows[0]
        return int(count), float(oldest) if oldest is not None else None

    def durations(self, limit: int = 500) -> list[tuple[float, float | None, str, str]]:
        """What the latest generations' waits saw, to learn the schedule from: (low, high, aspect, model
        URI) in seconds after the start, the generation finished after ``low`` and by ``high`` (None:
        still running when last seen). A record from before spans were kept gives its submission-to-
        collection time for both (an over-estimate: it includes the round trips)."""
        sql = ("SELECT seen_running, seen_done, finished_at - submitted_at, status, COALESCE(aspect, ''),"
               " COALESCE(model_uri, '') FROM generations WHERE COALESCE(api, '') != 'images' AND"
               " ((status='done' AND finished_at IS NOT NULL)"
               " OR (status IN ('pending', 'expired') AND seen_running > 0)) ORDER BY submitted_at DESC LIMIT ?")
        spans: list[tuple[float, float | None, str, str]] = []
        for running, done, total, status, aspect, model in self._query(sql, (limit,)):
            if status != "done":
                spans.append((float(running), None, str(aspect), str(model)))
            elif done is not None and done > 0:
                spans.append((float(running or 0.0), float(done), str(aspect), str(model)))
            elif total and total > 0:
                spans.append((float(total), float(total), str(aspect), str(model)))
        return spans

    def answer_times(self, limit: int = 500) -> list[tuple[float, float | None, str, str]]:
        """The Images API's latest answer times, as :meth:`durations` gives spans (low = high: the
        seconds from the request going out to the picture in hand), newest first."""
        rows = self._query("SELECT seen_done, COALESCE(aspect, ''), COALESCE(model_uri, '') FROM generations"
                           " WHERE api='images' AND status='done' AND seen_done > 0"
                           " ORDER BY submitted_at DESC LIMIT ?", (limit,))
        return [(float(done), float(done), str(aspect), str(model)) for done, aspect, model in rows]

    def latest_model_version(self, model_uri: str) -> str | None:
        """The model version of the newest finished generation of ``model_uri`` (None when unknown)."""
        rows = self._query("SELECT model_version FROM generations WHERE status='done' AND model_uri=?"
                           " AND model_version IS NOT NULL AND model_version!='' ORDER BY finished_at DESC LIMIT 1",
                           (model_uri,))
        return str(rows[0][0]) if rows else None

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM generations")[0][0])


def _runs_in_order(records: list[Record]) -> list[Record]:
    """Records newest first, as the newest run first and each run's generations in the order it asked
    for them: a run's are recorded a microsecond apart, runs at least a millisecond apart."""
    runs: list[list[Record]] = []
    for record in records:
        if runs and (runs[-1][-1].submitted_at - record.submitted_at).total_seconds() < 1e-3:
            runs[-1].append(record)
        else:
            runs.append([record])
    return [record for run in runs for record in reversed(run)]
