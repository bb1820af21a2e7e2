"""The benchmarks' table: rows added as sections finish (and printed as they come), rendered as Markdown."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


@dataclass
class Row:
    section: str
    metric: str
    values: dict[str, str]
    verdict: str = ""


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(self, section: str, metric: str, verdict: str = "", **values: str) -> None:
        self.rows.append(Row(section, metric, values, verdict))
        print(f"  {section}: {metric}: {values} {verdict}", file=sys.stderr, flush=True)

    def render(self) -> str:
        columns = ["section", "metric"]
        for row in self.rows:
            columns.extend(k for k in row.values if k not in columns)
        columns.append("target / verdict")
        lines = [[r.section, r.metric, *[r.values.get(c, "") for c in columns[2:-1]], r.verdict] for r in self.rows]
        widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(columns)]
        out = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |",
               "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out += ["| " + " | ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) + " |" for line in lines]
        return "\n".join(out)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
