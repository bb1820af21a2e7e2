"""Full size one click away: the buttons under a cell's previews that show the service's picture.

The notebook keeps only previews (see :func:`.pictures.images_bundle`); the full picture stays in
the local store and is read from there when asked for, so a live view holds file names, not
megabytes. Widgets need the live kernel: a saved notebook keeps the previews and their captions.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..core.steps import Steps, steps_now, steps_on_loop
from .widgets import button_style, fixed_layout, html_style


class FullSize(w.VBox):  # type: ignore[misc]
    """One button per picture; a click shows that picture at full size below, a second hides it."""

    def __init__(self, pictures: Sequence[tuple[str, Path | bytes, str]]) -> None:
        steps_now(self._build(pictures))

    @classmethod
    async def made(cls, pictures: Sequence[tuple[str, Path | bytes, str]]) -> FullSize:
        """The same, built a widget per turn of the event loop."""
        viewer = cls.__new__(cls)
        await steps_on_loop(viewer._build(pictures))
        return viewer

    def _build(self, pictures: Sequence[tuple[str, Path | bytes, str]]) -> Steps[None]:
        #: (label, the stored file or the bytes, mime type) per picture.
        self._pictures = list(pictures)
        self._open: int | None = None
        single = len(self._pictures) == 1
        self.buttons = []
        for index, (label, _, _) in enumerate(self._pictures):
            button = w.Button(description="full size" if single else label, icon="expand",
                              tooltip=f"Show {label} at full size", layout=fixed_layout(width="auto"),
                              style=button_style())
            button.on_click(lambda _, i=index: self.toggle(i))
            self.buttons.append(button)
            yield  # a widget per step: each is a message to the browser
        self.picture = w.Image(layout=w.Layout(width="100%", max_width="1024px", display="none"))
        yield
        self.note = w.HTML("", style=html_style(), layout=fixed_layout())
        yield
        title = [] if single else [w.HTML('<span style="font:12px monospace;opacity:.75">full size:</span>',
                                          style=html_style(), layout=fixed_layout())]
        row = w.HBox([*title, *self.buttons], layout=fixed_layout(flex_flow="row wrap", align_items="center"))
        yield
        super().__init__([row, self.note, self.picture])
        self.add_class("yart-full-size")

    def toggle(self, index: int) -> None:
        """Show picture ``index`` at full size (read from the store now), or hide it when shown."""
        if self._open == index:
            self._open = None
            self.picture.layout.display = "none"
            self.picture.value = b""
            self.note.value = ""
            return
        label, source, mime = self._pictures[index]
        try:
            data = source.read_bytes() if isinstance(source, Path) else source
        except OSError as exc:
            reason = html.escape(f"{label}: the stored file cannot be read ({exc.strerror or exc})")
            self.note.value = f'<span style="font:12px monospace;color:var(--jp-error-color1, #d32f2f)">{reason}</span>'
            return
        self._open = index
        self.picture.format = mime.split("/")[1]
        self.picture.value = data
        self.picture.layout.display = "block"
        self.note.value = (f'<span style="font:12px monospace;opacity:.75">{label} · full size · '
                           f"{len(data) // 1024} KB</span>")

    def __repr__(self) -> str:
        return "(full-size buttons: they need the live kernel; the full pictures are in the local store)"


def full_size(images: Sequence[Any]) -> FullSize:
    """The buttons for a cell's pictures: each reads its stored file (or, with no store, keeps its bytes)."""
    return FullSize(full_size_pictures(images))


async def full_size_soon(images: Sequence[Any]) -> FullSize:
    """:func:`full_size`, built a widget per turn of the event loop."""
    return await FullSize.made(full_size_pictures(images))


def full_size_pictures(images: Sequence[Any]) -> list[tuple[str, Path | bytes, str]]:
    """(label, stored file or bytes, mime type) per picture: what the buttons show."""
    labels = [f"seed {image.seed}" if image.seed is not None else f"#{n}" for n, image in enumerate(images, 1)]
    if len(set(labels)) < len(labels):
        labels = [f"#{n} {label}" for n, label in enumerate(labels, 1)]
    pictures = []
    for label, image in zip(labels, images, strict=True):
        path = image.path if image.path is not None and image.path.exists() else None
        pictures.append((label, path if path is not None else image.image_bytes, image.mime_type))
    return pictures
