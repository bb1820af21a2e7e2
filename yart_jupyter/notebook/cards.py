"""The form's parts: a message row, a picture's card (save, copy as a cell, compare), a job's card."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import ipywidgets as w

from ..core import errors, provenance
from ..core.status import FORM_COLLECT, BatchStatus
from ..core.steps import Steps, steps_now, steps_on_loop
from ..engine import ItemEvent
from ..media.image import GeneratedImage, ImageSet
from ..media.outputs import target_path
from ..present.html import ERROR as _ERROR
from ..present.html import FAILED
from ..present.html import span as _html
from ..present.live import StaticCopy
from ..present.pictures import STATIC_COPY_SCALE, figure_size
from ..present.progress import progress_bundle
from ..present.widgets import button_style, checkbox_style, fixed_layout, html_style, text_style


def card_longest(image: GeneratedImage) -> int:
    """The longest side of a card's picture: the static copy's preview (one encoding serves both)."""
    return figure_size(image.size, 2, STATIC_COPY_SCALE)[1]


class Gallery(Protocol):
    """What a card asks of the form that holds it."""

    save_folder: w.Text

    def show_comparison(self) -> None:
        """Redraw the comparison of the ticked pictures."""

    def reuse_seed(self, image: GeneratedImage) -> None:
        """Put a picture's seed back into the form."""

    #: The newest pictures kept as the notebook's plain output.
    copy: StaticCopy


def cell_text(image: GeneratedImage) -> str:
    """The ``%%yandexart`` cell that makes this picture again."""
    return provenance.cell_text(image.recipe())


class MessageRow(w.HBox):  # type: ignore[misc]
    """An extra weighted message: its text, its weight, and a button to remove it."""

    def __init__(self, on_change: Callable[[], object], on_remove: Callable[[MessageRow], None]) -> None:
        self.text = w.Text(placeholder="another message, e.g. a style", layout=w.Layout(flex="1 1 auto"))
        self.weight = w.FloatText(value=0.5, step=0.1, description="weight", layout=w.Layout(width="150px"),
                                  style={"description_width": "50px"})
        self.remove = w.Button(icon="times", tooltip="Remove this message", layout=w.Layout(width="36px"))
        super().__init__([self.text, self.weight, self.remove], layout=w.Layout(width="100%"))
        for widget in (self.text, self.weight):
            widget.observe(lambda _: on_change(), "value")
        self.remove.on_click(lambda _: on_remove(self))


class ImageCard(w.HBox):  # type: ignore[misc]
    """One picture in the gallery with its caption and actions."""

    def __init__(self, image: GeneratedImage, form: Gallery) -> None:
        steps_now(self._build(image, form))

    @classmethod
    async def made(cls, image: GeneratedImage, form: Gallery) -> ImageCard:
        """The same, built a widget per turn of the event loop (a card is a dozen widgets)."""
        card = cls.__new__(cls)
        await steps_on_loop(card._build(image, form))
        return card

    def _build(self, image: GeneratedImage, form: Gallery) -> Steps[None]:
        """The card's widgets, one per step (each is a message to the browser)."""
        self.image = image
        self._form = form
        self._thumb, mime, _ = image.preview(card_longest(image))  # the preview the form's static copy shows
        self._thumb_format = mime.split("/")[1]
        self.picture = w.Image(value=self._thumb, format=self._thumb_format, layout=w.Layout(width="256px"))
        yield
        self.caption = w.HTML(_html(image.caption()) + "<br>" + _html(image.prompt_line[:400], "font-size: 12px"),
                              style=html_style(), layout=fixed_layout())
        yield
        auto = fixed_layout(width="auto")
        self.save_button = w.Button(description="Save", icon="save", tooltip=f"Save into {form.save_folder.value}",
                                    layout=auto, style=button_style())
        yield
        self.reuse_button = w.Button(description="Reuse seed", icon="repeat", tooltip="Put this seed in the form",
                                     style=button_style(),  # a model without seeds: there is no seed to reuse
                                     layout=auto if image.seed is not None else fixed_layout(display="none"))
        yield
        self.cell_button = w.Button(description="Cell text", icon="code", tooltip="The equivalent %%yandexart cell",
                                    layout=auto, style=button_style())
        yield
        self.full_button = w.Button(description="Full size", icon="expand", tooltip="Show the full picture",
                                    layout=auto, style=button_style())
        yield
        self.pick = w.Checkbox(value=False, description="compare", indent=False, layout=fixed_layout(width="90px"),
                               style=checkbox_style(), tooltip="Tick two or more pictures to see them side by side")
        self.pick.observe(lambda _: form.show_comparison(), "value")
        yield
        self.details = w.HTML("", style=html_style(), layout=fixed_layout())
        yield
        self.cell = w.Textarea(value=cell_text(image), style=text_style(),
                               layout=w.Layout(width="100%", height="90px", display="none"))
        self.save_button.on_click(self.save)
        self.reuse_button.on_click(lambda _: form.reuse_seed(image))
        self.cell_button.on_click(self.toggle_cell)
        self.full_button.on_click(self.toggle_full)
        yield
        actions = w.HBox([self.save_button, self.reuse_button, self.cell_button, self.full_button, self.pick],
                         layout=fixed_layout(flex_flow="row wrap", align_items="center"))
        yield
        info = w.VBox([self.caption, actions, self.details, self.cell], layout=fixed_layout(flex="1 1 auto"))
        yield
        super().__init__([self.picture, info],
                         layout=fixed_layout(width="100%", margin="6px 0", align_items="flex-start"))
        self.add_class("yart-card")

    def save(self, _: Any = None) -> Path | None:
        """Save the picture into the form's folder (never overwriting)."""
        try:
            pattern = str(Path(self._form.save_folder.value or ".") / "yandexart-{seed}")
            path = self.image.save(target_path(pattern, self.image, 1))
        except OSError as exc:
            self.details.value = _html(f"Could not save: {exc}", _ERROR)
            return None
        self.details.value = _html(f"saved {path}")
        return path

    def toggle_cell(self, _: Any = None) -> None:
        shown = self.cell.layout.display != "none"
        self.cell.layout.display = "none" if shown else "block"

    def toggle_full(self, _: Any = None) -> None:
        if self.full_button.description == "Full size":
            self.picture.value = self.image.image_bytes
            self.picture.format = self.image.mime_type.split("/")[1]
            self.picture.layout.width = "100%"
            self.full_button.description = "Thumbnail"
        else:
            self.picture.value = self._thumb
            self.picture.format = self._thumb_format
            self.picture.layout.width = "256px"
            self.full_button.description = "Full size"


class JobCard(w.VBox):  # type: ignore[misc]
    """One Generate click: its progress line, then its pictures (or its error)."""

    def __init__(self, title: str) -> None:
        self.title = w.HTML(_html(title, "font-weight: 600; font-size: 12px"))
        self.progress_line = w.HTML(_html("starting ..."))
        self.images = w.VBox([])
        super().__init__([self.title, self.progress_line, self.images],
                         layout=w.Layout(border="1px solid var(--jp-border-color2, #ddd)", padding="6px",
                                         margin="6px 0", width="100%"))
        self.add_class("yart-job")
        self.form: Gallery | None = None
        self._status: BatchStatus | None = None
        self._drawn = 0.0
        #: The cards of the pictures arrived so far, by their place in the batch.
        self._cards: dict[int, ImageCard] = {}

    def progress(self, status: BatchStatus) -> None:
        """Redraw the bar, four times a second at most (each redraw is a message to the browser)."""
        self._status = status
        now = time.monotonic()
        if now - self._drawn >= 0.25:
            self._drawn = now
            self.progress_line.value = progress_bundle(status)["text/html"]

    def prepare_finish(self, images: Sequence[Any]) -> list[str]:
        """Nothing to write."""
        return []

    def prepare_picture(self, image: GeneratedImage) -> None:
        """Off the loop: the preview an arriving picture's card and the form's static copy show."""
        image.preview(card_longest(image))

    async def item(self, event: ItemEvent) -> None:
        """A picture arrived: its card joins the others in the batch's order (the gallery fills in as
        pictures come, and no moment makes every card at once)."""
        if event.image is not None and self.form is not None:
            self._cards[event.index] = await ImageCard.made(event.image, self.form)
            self.images.children = [self._cards[index] for index in sorted(self._cards)]

    async def finished(self, images: ImageSet, failures: Sequence[errors.YandexArtError], notes: Sequence[str]) -> None:
        done = progress_bundle(self._status)["text/html"] if self._status is not None else self.progress_line.value
        lines = [*(_html(note) for note in notes), *(_html(f"{FAILED} {line}", _ERROR)
                                                             for line in errors.failure_lines(failures))]
        self.progress_line.value = done + "".join("<br>" + line for line in lines)
        if self.form is not None:
            shown = {id(card.image) for card in self._cards.values()}
            late = [await ImageCard.made(image, self.form) for image in images if id(image) not in shown]
            if late:  # pictures no event told of
                self.images.children = [*self.images.children, *late]
            await self.form.copy.add(images)

    def stopped(self, status: BatchStatus) -> None:
        self.progress_line.value = _html(status.interrupted_line(FORM_COLLECT), _ERROR)
