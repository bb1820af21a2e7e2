"""When to read an operation again: one replaceable policy object.

The default is the adaptive policy (:mod:`.read_policy`); :class:`FixedPolicy` reads at a fixed
interval, as the official SDK does, for comparison and tests.
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
class FixedPolicy:
    """A fixed interval (what the official SDK does with 10 s); for comparison and tests."""

    interval: float = 10.0

    def next_delay(self, polls: int, elapsed: float) -> float:
        return self.interval
