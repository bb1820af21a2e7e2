"""An experiment: a sweep's cells with their pictures, as a cell's value and as the store keeps it.

Indexable by axis values (``exp["oil painting", 3]``), iterable over its pictures, and shown as a
labelled grid. ``records()`` gives plain rows (every parameter, the operation id, the model version,
the duration, the file) for a table or a paper; ``to_pandas()`` the same as a DataFrame.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import YandexArtError
from ..core.request import GenerationRequest
from ..media.image import GeneratedImage, ImageSet
from .sweep import Axis, Sweep

if TYPE_CHECKING:
    from ..engine import ItemEvent
    from ..store import ExperimentRecord, Store

#: A cell's states, in the order a generation goes through them.
STATES = ("queued", "running", "done", "cached", "failed", "missing")


def new_id() -> str:
    """A short id for an experiment: ``exp-`` and eight hex digits (a prefix finds it in the store)."""
    return f"exp-{uuid.uuid4().hex[:8]}"


@dataclass
class Slot:
    """One cell of the grid: its axis values, its request, and what has become of it."""

    key: tuple[Any, ...]
    request: GenerationRequest | None
    state: str = "queued"
    operation_id: str | None = None
    image: GeneratedImage | None = None
    error: YandexArtError | None = None
    #: Why the store has no picture for a cell of an experiment shown again (pending, failed ...).
    note: str | None = None


@dataclass
class Experiment:
    """A sweep's results: axes (seeds last), one slot per combination, and its id in the store."""

    title: str
    axes: list[Axis]
    slots: list[Slot]
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    notebook: str | None = None

    @classmethod
    def from_sweep(cls, sweep: Sweep, *, notebook: str | None = None) -> Experiment:
        return cls(sweep.title(), list(sweep.axes), [Slot(c.key, c.request) for c in sweep.cells], notebook=notebook)

    # -- live updates (from the engine, through the grid's view) ------------------------------

    def update(self, event: ItemEvent) -> None:
        """Record what the engine says of one cell."""
        slot = self.slots[event.index]
        slot.operation_id = event.operation_id or slot.operation_id
        if event.state == "done" and event.image is not None:
            slot.image = event.image
            slot.state = "cached" if event.image.cached else "done"
        elif event.state == "failed":
            slot.state, slot.error = "failed", event.error
        else:
            slot.state = event.state

    # -- reading ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.slots)

    def shape(self) -> str:
        """``style 3 × seed 4``."""
        return " × ".join(f"{axis.name} {len(axis.values)}" for axis in self.axes)

    def labels(self, slot: Slot) -> dict[str, str]:
        """A cell's axis values by axis name."""
        return {axis.name: str(value) for axis, value in zip(self.axes, slot.key, strict=True)}

    def slot(self, *key: Any) -> Slot:
        """The cell with these axis values (``3`` finds seed 3 as well as ``"3"``)."""
        if len(key) != len(self.axes):
            names = ", ".join(axis.name for axis in self.axes)
            raise KeyError(f"give a value for each axis ({names}); got {len(key)}")
        position = 0
        for axis, value in zip(self.axes, key, strict=True):
            position = position * len(axis.values) + axis.index(value)
        return self.slots[position]

    def __getitem__(self, key: Any) -> GeneratedImage | ImageSet:
        """``exp["oil painting", 3]`` is one picture; fewer values than axes give the pictures of
        that slice (``exp["oil painting"]``: its row)."""
        values = key if isinstance(key, tuple) else (key,)
        if len(values) < len(self.axes):
            fixed = [axis.index(v) for axis, v in zip(self.axes, values, strict=False)]
            chosen = [s for s in self.slots if all(
                axis.index(value) == i for axis, value, i in zip(self.axes, s.key, fixed, strict=False))]
            return ImageSet(s.image for s in chosen if s.image is not None)
        slot = self.slot(*values)
        if slot.image is None:
            reason = str(slot.error) if slot.error else slot.note or slot.state
            raise KeyError(f"{', '.join(map(str, values))}: no picture ({reason})")
        return slot.image

    def __iter__(self) -> Iterator[GeneratedImage]:
        return (slot.image for slot in self.slots if slot.image is not None)

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def images(self) -> ImageSet:
        """Every picture that arrived, in grid order."""
        return ImageSet(self)

    @property
    def failures(self) -> list[YandexArtError]:
        return [slot.error for slot in self.slots if slot.error is not None]

    def counts(self) -> dict[str, int]:
        """How many cells are in each state."""
        return {state: sum(slot.state == state for slot in self.slots) for state in STATES
                if any(slot.state == state for slot in self.slots)}

    def records(self) -> list[dict[str, Any]]:
        """One plain dict per cell: the axis values, every parameter, and what was made."""
        rows = []
        for slot in self.slots:
            image, request = slot.image, slot.request
            messages = image.messages if image is not None else request.messages if request is not None else ()
            file = (image.saved[0] if image.saved else image.path) if image is not None else None
            rows.append({
                "experiment": self.id, **self.labels(slot),
                "prompt": " | ".join(m.text for m in messages),
                "weights": [m.weight for m in messages],
                "seed": image.seed if image is not None else request.seed if request is not None else None,
                "aspect": str(image.aspect if image is not None else request.aspect if request is not None else ""),
                "mime_type": image.mime_type if image is not None else request.mime_type if request else None,
                "model_uri": image.model_uri if image is not None else request.model_uri if request else None,
                "model_version": image.model_version if image is not None else None,
                "operation_id": slot.operation_id, "status": slot.state,
                "error": str(slot.error) if slot.error else slot.note,
                "duration": round(image.duration, 3) if image is not None and image.duration is not None else None,
                "cached": bool(image.cached) if image is not None else False,
                "file": str(file) if file is not None else None,
            })
        return rows

    def to_pandas(self) -> Any:
        """:meth:`records` as a pandas DataFrame (pandas is optional: ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas (records() gives the same rows)") from None
        return pd.DataFrame(self.records())

    # -- showing and saving ----------------------------------------------------------------

    def grid(self) -> Any:
        """The labelled grid, as a displayable object (the cell shows it; so does ``display(exp.grid())``)."""
        from .grid import Grid

        return Grid(self)

    def save_grid(self, path: str | os.PathLike[str], *, cell: int = 256, overwrite: bool = False) -> Path:
        """Write one contact-sheet picture of the grid with its labels drawn in (PNG, or JPEG by the name)."""
        from .contact_sheet import save_contact_sheet

        return save_contact_sheet(self, Path(path).expanduser(), cell=cell, overwrite=overwrite)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        from ..core.settings import current
        from .grid import grid_output

        return grid_output(self, inline=current().inline)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {state}" for state, n in self.counts().items())
        return f"Experiment({self.id!r}, {self.shape()}, {counts}, title={self.title[:40]!r})"

    # -- the store -------------------------------------------------------------------------

    def to_record(self, references: Sequence[str]) -> ExperimentRecord:
        """What the store keeps: ``references`` name each cell's generation (idempotency key or operation id)."""
        from ..store import ExperimentRecord

        return ExperimentRecord(self.id, self.created_at, self.title,
                                tuple((axis.name, axis.values) for axis in self.axes),
                                tuple((slot.key, ref) for slot, ref in zip(self.slots, references, strict=True)),
                                self.notebook)

    @classmethod
    def load(cls, store: Store, experiment_id: str) -> Experiment:
        """An experiment from the store, each cell with its stored picture (or why it has none)."""
        found = store.experiments(limit=2, experiment_id=experiment_id)
        if not found:
            raise LookupError(f"no experiment {experiment_id!r} in the store ({store.home}); "
                              "%yandexart history --experiments lists them")
        if len(found) > 1 and found[0].id != experiment_id:
            raise LookupError(f"{experiment_id!r} names several experiments; give more of the id")
        record = found[0]
        slots = []
        for key, reference in record.items:
            stored = store.find(reference)
            slot = Slot(tuple(key), stored.request() if stored is not None else None)
            if stored is None:
                slot.state, slot.note = "missing", "not in the store (pruned?)"
            else:
                slot.operation_id = None if stored.operation_id.startswith("intent:") else stored.operation_id
                if stored.status == "done" and stored.image_path is not None and stored.image_path.exists():
                    slot.image, slot.state = stored.to_image(), "done"
                elif stored.status == "done":
                    slot.state, slot.note = "missing", "its file was pruned from the store"
                elif stored.status in ("failed", "cancelled", "expired"):
                    slot.state, slot.note = "failed", f"{stored.status}: {stored.error or ''}".rstrip(": ")
                else:
                    slot.state, slot.note = "missing", f"{stored.status}: %yandexart resume --all collects it"
            slots.append(slot)
        axes = [Axis(name, tuple(values)) for name, values in record.axes]
        return cls(record.title, axes, slots, id=record.id, created_at=record.created_at, notebook=record.notebook)
