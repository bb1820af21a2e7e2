"""When to read an operation again: one replaceable policy object.

The default starts soon (half a second) and backs off gently to a few seconds, so a quick
generation is seen quickly and a slow one does not spend the folder's read quota.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@runtime_checkable
class PollPolicy(Protocol):
    """Decides the pause before the next read of an operation."""

    def next_delay(self, polls: int, elapsed: float) -> float:
        """Seconds to wait after ``polls`` reads, ``elapsed`` seconds after the start."""
        ...


@dataclass(frozen=True)
class BackoffPolicy:
    """Geometric back-off from ``first`` to ``max_interval`` seconds."""

    first: float = 0.5
    factor: float = 1.3
    max_interval: float = 5.0

    def next_delay(self, polls: int, elapsed: float) -> float:
        return min(self.max_interval, self.first * self.factor ** max(0, polls))


@dataclass(frozen=True)
class FixedPolicy:
    """A fixed interval (what the official SDK does with 10 s); for comparison and tests."""

    interval: float = 10.0

    def next_delay(self, polls: int, elapsed: float) -> float:
        return self.interval
