"""The garbage collector's pauses while a stall meter runs, with nothing but the standard library:
the bench's engine process and the notebook path's kernel both import it (the kernel from this
folder, put on its path), so both rows count collections the same way."""

from __future__ import annotations

import gc
import time
from typing import Any


class Collector:
    """The garbage collector's pauses while measuring (``gc.callbacks``): a stall as long as one of
    them is the collector's, which a heap grown by whatever ran before can make long."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._began))

    def start(self) -> Collector:
        """Hear of every collection from now on (the kernel's meter spans two cells, so no ``with``)."""
        gc.callbacks.append(self)
        return self

    def stop(self) -> None:
        gc.callbacks.remove(self)

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def collected(pauses: list[tuple[int, float]]) -> str:
    """What the collector did while measuring, for the row."""
    if not pauses:
        return "no collections"
    full = sum(1 for generation, _ in pauses if generation == 2)
    counted = f"{len(pauses)} collection{'s' if len(pauses) > 1 else ''}"
    return f"{counted} ({full} full), longest {max(s for _, s in pauses) * 1000:.1f} ms"
