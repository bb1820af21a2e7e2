"""Compare pictures side by side: ``%yandexart compare A B [C ...]`` and ``yart_jupyter.compare(a, b)``.

Each side is a picture (a GeneratedImage), an operation id in the store, a history entry (``#2``:
the second newest), or an image file saved with its recipe. All are shown at the same size over a
table of their parameters, where what differs from the first is highlighted, and the prompts are
diffed word by word.
"""

from __future__ import annotations

import base64
import difflib
import html
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import YandexArtError
from ..media.image import GeneratedImage
from ..present.records import state

if TYPE_CHECKING:
    from ..store import Store

#: The parameters compared, in the table's order, with their labels.
PARAMETERS = (("prompt", "prompt"), ("weights", "weights"), ("seed", "seed"), ("aspect", "aspect"),
              ("mime_type", "type"), ("model_uri", "model"), ("model_version", "model version"),
              ("operation_id", "operation"), ("finished_at", "made"))
#: Parameters that differ between any two pictures, so never highlighted.
_ALWAYS_DIFFERENT = ("operation_id", "finished_at")
_CHANGED = "background:var(--jp-warn-color3, rgba(255,193,7,.28))"
_INSERTED = "background:var(--jp-success-color3, rgba(76,175,80,.3));text-decoration:none"
_DELETED = "background:var(--jp-error-color3, rgba(244,67,54,.25))"


class CompareError(YandexArtError, LookupError):
    """A side of a comparison could not be found (no such operation, entry or file)."""


@dataclass(frozen=True)
class Side:
    """One picture of a comparison: what the user named it, its recipe, and its bytes."""

    label: str
    recipe: dict[str, Any]
    picture: bytes | None

    def value(self, name: str) -> str:
        """A parameter as text, as the table shows it."""
        messages = self.recipe.get("messages") or []
        if name == "prompt":
            return " | ".join(str(m.get("text", "")) for m in messages)
        if name == "weights":
            return ", ".join(f"{float(m.get('weight', 1)):g}" for m in messages)
        if name == "finished_at":  # when this picture was made (a sweep asks for all of them at once)
            moment = self.recipe.get("finished_at") or self.recipe.get("submitted_at")
            return re.sub(r"(\.\d{3})\d*", r"\1", str(moment)) if moment else ""
        value = self.recipe.get(name)
        return "" if value is None else str(value)


def resolve(source: Any, store: Store | None) -> Side:
    """A side from a GeneratedImage, a ``#N`` history entry, an operation id or an image file."""
    if isinstance(source, GeneratedImage):
        return Side(f"op {source.operation_id}", source.recipe(), source.image_bytes)
    text = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    try:
        entry = store.entry(text) if store is not None else None
    except LookupError as exc:
        raise CompareError(f"{exc}; history lists them") from None
    if entry is not None:
        return _from_record(f"#{text.strip().lstrip('#')}", entry)
    path = Path(text).expanduser()
    if path.suffix.lower() in (".jpg", ".jpeg", ".png") or path.exists():
        if not path.is_file():
            raise CompareError(f"{text}: no such image file")
        from ..core.provenance import ProvenanceError, read_recipe

        if path.suffix.lower() in (".ipynb", ".html", ".htm"):
            raise CompareError(f"{text} is a document; compare takes pictures (operation ids, #N, image files)")
        data = path.read_bytes()
        try:
            found = read_recipe(data)
        except ProvenanceError:
            found = {"messages": [{"text": "(no recipe in the file)", "weight": 1}]}
        return Side(path.name, found, data)
    record = store.get(text) if store is not None else None
    if record is None:
        raise CompareError(f"{text!r} is neither an operation id in the store, a history entry (#N), nor an image file")
    return _from_record(f"op {text}", record)


def _from_record(label: str, record: Any) -> Side:
    if record.status != "done" or record.image_path is None or not record.image_path.exists():
        reason = "its file was pruned" if record.status == "done" else state(record)
        raise CompareError(f"{label} has no picture in the store ({reason})", operation_id=record.operation_id)
    image = record.to_image()
    return Side(label, image.recipe(), image.image_bytes)


def word_diff(first: str, other: str) -> str:
    """``other`` against ``first`` as HTML: inserted words marked, deleted ones struck through."""
    a, b = first.split(), other.split()
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(html.escape(" ".join(b[j1:j2])))
            continue
        if op in ("delete", "replace"):
            parts.append(f'<del style="{_DELETED}">{html.escape(" ".join(a[i1:i2]))}</del>')
        if op in ("insert", "replace"):
            parts.append(f'<ins style="{_INSERTED}">{html.escape(" ".join(b[j1:j2]))}</ins>')
    return " ".join(parts)


class Comparison:
    """Pictures side by side with their parameters; the differences from the first are highlighted."""

    def __init__(self, sides: Sequence[Side]) -> None:
        if len(sides) < 2:
            raise CompareError("compare needs at least two pictures")
        self.sides = list(sides)

    def _nothing_differs(self) -> str:
        """The line under a table where no parameter differs: why the pictures may still differ."""
        if len({side.value("operation_id") for side in self.sides}) == 1 and self.sides[0].value("operation_id"):
            return "nothing: the same picture"
        if all(side.recipe.get("no_seed") for side in self.sides):  # a model without seeds
            return "nothing but the operation: samples of a model without seeds differ by chance"
        return "nothing but the operation"

    def _differ_line(self) -> str:
        """What differs, by the table's labels (``model``, not ``model_uri``), or why nothing does."""
        labels = dict(PARAMETERS)
        return ", ".join(labels[name] for name in self.differences()) or self._nothing_differs()

    def differences(self) -> dict[str, list[str]]:
        """Each parameter whose value is not the same on every side (operation ids and times always differ)."""
        found = {}
        for name, _ in PARAMETERS:
            values = [side.value(name) for side in self.sides]
            if len(set(values)) > 1 and name not in _ALWAYS_DIFFERENT:
                found[name] = values
        return found

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.bundle(), {"yart_jupyter": {"recipes": [side.recipe for side in self.sides]}}

    def bundle(self) -> dict[str, Any]:
        """The pictures at one size, then the table (HTML), and the table as plain text."""
        from ..media.pixels import preview

        width = max(200, min(360, 1000 // len(self.sides)))
        pictures = []
        for side in self.sides:
            if side.picture is None:
                pictures.append(f"<td>{html.escape(side.label)}</td>")
                continue
            data, mime, _ = preview(side.picture, 2 * width)
            pictures.append(f'<td style="padding:4px;vertical-align:top"><img src="data:{mime};'
                            f'base64,{base64.b64encode(data).decode("ascii")}" style="width:{width}px;height:auto;'
                            f'border-radius:3px;display:block"></td>')
        heads = "".join(f'<th style="padding:2px 6px;text-align:left">{html.escape(s.label)}</th>' for s in self.sides)
        rows = []
        first = self.sides[0]
        for name, label in PARAMETERS:
            values = [side.value(name) for side in self.sides]
            if not any(values):
                continue
            cells = []
            for i, value in enumerate(values):
                changed = i > 0 and value != values[0] and name not in _ALWAYS_DIFFERENT
                shown = word_diff(first.value("prompt"), value) if name == "prompt" and changed \
                    else html.escape(value)
                style = f"padding:2px 6px;vertical-align:top;text-align:left;max-width:{width}px;" + \
                    (_CHANGED if changed else "")
                cells.append(f'<td class="{"yart-changed" if changed else ""}" style="{style}">{shown}</td>')
            rows.append(f'<tr><th style="padding:2px 6px;text-align:left;vertical-align:top">{label}</th>'
                        f'{"".join(cells)}</tr>')
        differ = self._differ_line()
        table = (f'<table class="yart-compare" style="font:12px monospace;border-collapse:collapse">'
                 f'<tr><th></th>{"".join(pictures)}</tr><tr><th></th>{heads}</tr>{"".join(rows)}</table>'
                 f'<div style="font:12px monospace;opacity:.8">differs: {html.escape(differ)}</div>')
        return {"text/html": table, "text/plain": self.text()}

    def text(self) -> str:
        """The table as plain text, a tab between columns: what a terminal prints, and the
        notebook's plain-text copy."""
        lines = ["\t".join(["", *(side.label for side in self.sides)])]
        for name, label in PARAMETERS:
            values = [side.value(name) for side in self.sides]
            if any(values):
                lines.append("\t".join([label, *values]))
        lines.append(f"differs: {self._differ_line()}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()


def compare(*sources: Any, store: Store | None = None) -> Comparison:
    """``yart_jupyter.compare(a, b, ...)``: each a GeneratedImage, an operation id, ``#N`` or an image file."""
    if store is None:
        from ..core.settings import current
        from ..store import get_store

        store = get_store(current().store_location)
    return Comparison([resolve(source, store) for source in sources])
