"""Pictures in a notebook: previews with captions and recipes, a form's static copy, a recipe card."""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from ..core.steps import Steps, steps_now, steps_on_loop
from .html import MUTED, Bundle


class Picture(Protocol):
    """What a figure shows: a GeneratedImage, as far as display is concerned."""

    image_bytes: bytes
    mime_type: str
    #: Files the picture was saved to (a preview links to the first one).
    saved: list[Path]

    @property
    def size(self) -> tuple[int, int] | None: ...

    @property
    def prompt(self) -> str: ...

    @property
    def prompt_line(self) -> str: ...

    def caption(self) -> str: ...

    def recipe(self) -> dict[str, Any]: ...

    def preview(self, longest: int) -> tuple[bytes, str, tuple[int, int]]: ...


_FIGURE = (
    '<figure data-yart-recipe="{recipe}" '
    'style="margin:0 12px 12px 0;display:inline-block;vertical-align:top;max-width:{width}px">'
    '{picture}'
    '<figcaption style="font:12px/1.4 monospace;opacity:.75;margin-top:4px">{caption}<br>{prompt}</figcaption>'
    "</figure>"
)
_IMG = '<img src="data:{mime};base64,{data}" alt="{alt}" style="width:100%;height:auto;border-radius:4px">'
_NONE = ('<div style="width:{width}px;max-width:100%;aspect-ratio:{ratio};display:flex;align-items:center;'
         'justify-content:center;border:1px dashed var(--jp-border-color1, #bbb);border-radius:4px;'
         'font:12px monospace;opacity:.7">not embedded (inline = none)</div>')


def figure_box(count: int) -> tuple[int, int]:
    """The largest (width, height) in CSS pixels a figure is shown at among ``count``: one image
    large, several smaller."""
    return (720, 640) if count == 1 else (340, 420)


def figure_size(size: tuple[int, int] | None, count: int, scale: int = 2) -> tuple[int, int]:
    """(CSS width a picture of ``size`` is shown at among ``count`` figures, the longest side its
    preview is encoded at: ``scale`` times what is shown, twice for high-density screens)."""
    width, tallest = figure_box(count)
    shown = min(width, size[0], tallest * size[0] // size[1]) if size else width
    return shown, scale * max(shown, shown * size[1] // size[0]) if size else scale * shown


def prepare_figure(image: Picture, count: int, inline: str = "preview", scale: int = 2) -> None:
    """Encode the preview :func:`images_bundle` will embed for ``image`` among ``count`` figures (the
    picture keeps it): the costly part of drawing, done where it does not hold up the event loop."""
    if inline == "preview":
        image.preview(figure_size(image.size, count, scale)[1])


def _link(image: Picture) -> str | None:
    """A relative link to the picture's saved file, when there is one under the notebook's folder."""
    for path in image.saved:
        try:
            relative = os.path.relpath(path)
        except ValueError:
            continue
        if not relative.startswith(".."):
            return quote(Path(relative).as_posix())
    return None


def images_bundle_steps(
    images: Sequence[Picture], notes: Sequence[str] = (), inline: str = "preview", *, scale: int = 2,
    gallery: bool = False,
) -> Steps[Bundle]:
    """A grid of figures with captions (one image is a grid of one), plus any notes below.

    ``inline``: ``preview`` embeds each picture re-encoded at ``scale`` times the size it is shown at
    (twice, for high-density screens) and says so in the caption; ``full`` embeds the service's
    bytes; ``none`` embeds no picture. A preview of a saved picture links to the file. A
    ``gallery`` shows even one picture at the size of several.
    """
    figures = []
    for image in images:
        size = image.size
        shown, longest = figure_size(size, 2 if gallery else len(images), scale)
        caption = image.caption()
        link = _link(image)
        if inline == "none":
            picture = _NONE.format(width=shown, ratio=f"{size[0]}/{size[1]}" if size else "1")
        else:
            data, mime = image.image_bytes, image.mime_type
            if inline == "preview":
                data, mime, (w, h) = image.preview(longest)
                if data is not image.image_bytes:
                    caption += f" · preview {w}×{h}"
            picture = _IMG.format(mime=mime, data=base64.b64encode(data).decode("ascii"),
                                  alt=html.escape(image.prompt[:100], quote=True))
        if link is not None:
            picture = f'<a href="{html.escape(link, quote=True)}" title="full size: {html.escape(link)}">{picture}</a>'
        figures.append(_FIGURE.format(
            width=shown, picture=picture, caption=html.escape(caption),
            recipe=html.escape(json.dumps(image.recipe(), ensure_ascii=False), quote=True),
            prompt=html.escape(image.prompt_line[:320]),
        ))
        yield  # a figure per step
    note_html = "".join(f'<div style="font:12px monospace;opacity:.8">{html.escape(n)}</div>' for n in notes)
    plain = "\n".join([*(f"{i.caption()}  {i.prompt_line[:160]}" for i in images), *notes])
    return {"text/html": f'<div class="yart-result">{"".join(figures)}{note_html}</div>', "text/plain": plain}


def images_bundle(
    images: Sequence[Picture], notes: Sequence[str] = (), inline: str = "preview", *, scale: int = 2,
    gallery: bool = False,
) -> Bundle:
    """:func:`images_bundle_steps` at once."""
    return steps_now(images_bundle_steps(images, notes, inline, scale=scale, gallery=gallery))


def images_output(
    images: Sequence[Picture], notes: Sequence[str] = (), inline: str = "preview",
) -> tuple[Bundle, Bundle]:
    """:func:`images_bundle` and its display metadata: every picture's recipe, so a saved notebook
    keeps how each of its pictures was made (``yart_jupyter.info("notebook.ipynb")`` reads them)."""
    return steps_now(_images_output_steps(images, notes, inline))


async def images_output_soon(
    images: Sequence[Picture], notes: Sequence[str] = (), inline: str = "preview",
) -> tuple[Bundle, Bundle]:
    """:func:`images_output`, built a figure per turn of the event loop."""
    return await steps_on_loop(_images_output_steps(images, notes, inline))


def _images_output_steps(images: Sequence[Picture], notes: Sequence[str], inline: str) -> Steps[tuple[Bundle, Bundle]]:
    bundle = yield from images_bundle_steps(images, notes, inline)
    return bundle, {"yart_jupyter": {"recipes": [image.recipe() for image in images]}}


#: The most pictures a form's static copy keeps (the newest): the notebook stays light however long
#: the form is used; every picture is in the store and in ``%yandexart history``.
STATIC_COPY_LIMIT = 24
#: The static copy's previews are at the size they are shown (the live form is where pictures are
#: looked at): a third of the weight, and what the form's cards show too.
STATIC_COPY_SCALE = 1


def static_copy_bundle(images: Sequence[Picture], copy_id: str, inline: str = "preview") -> Bundle:
    """What a form leaves in the notebook: its newest results as plain output (small previews, captions),
    since widget views vanish when the notebook is reopened without the kernel. The live form hides
    it with a style rule naming ``copy_id``, so it shows only where the form no longer does."""
    return steps_now(static_copy_steps(images, copy_id, inline))


def static_copy_steps(images: Sequence[Picture], copy_id: str, inline: str = "preview") -> Steps[Bundle]:
    """:func:`static_copy_bundle` a figure per step (a form's copy holds up to 24 of them)."""
    if not images:
        return {"text/plain": ""}
    grid = yield from images_bundle_steps(images[:STATIC_COPY_LIMIT], inline=inline, scale=STATIC_COPY_SCALE,
                                          gallery=True)
    older = len(images) - STATIC_COPY_LIMIT
    more = f"; {older} older ones are in %yandexart history" if older > 0 else ""
    title = (f'<div style="{MUTED};margin:4px 0">YandexART form results ({len(images)}, newest first{more}; '
             "a copy kept in the notebook, since the form needs the live kernel)</div>")
    return {"text/html": f'<div class="yart-static-copy" data-form="{html.escape(copy_id, quote=True)}">'
                         f'{title}{grid["text/html"]}</div>',
            "text/plain": f"YandexART form results (newest first):\n{grid['text/plain']}"}


def hide_static_copy(copy_id: str) -> str:
    """The style rule a live form carries, so its static copy does not show twice."""
    return f'<style>.yart-static-copy[data-form="{html.escape(copy_id, quote=True)}"]{{display:none}}</style>'


def recipe_bundle(recipe: dict[str, Any], picture: bytes | None = None) -> Bundle:
    """A recipe as a picture (when there is one), a table of its parameters and the cell that makes it."""
    from ..core.provenance import cell_text

    rows = [("prompt", " | ".join(m["text"] for m in recipe["messages"]))]
    rows += [("weights", ", ".join(f"{m.get('weight', 1):g}" for m in recipe["messages"]))]
    if recipe.get("seed") is None:  # a model without seeds: no request makes this picture again
        rows += [("seed", "none (the model takes no seed: the cell below makes a new picture)")]
    if recipe.get("revised_prompt"):
        rows += [("revised prompt", str(recipe["revised_prompt"]))]  # what the Images API drew from
    rows += [(key.replace("_", " "), str(recipe[key])) for key in (
        "seed", "aspect", "mime_type", "model_uri", "model_version", "operation_id", "submitted_at",
        "finished_at", "generator") if recipe.get(key) not in (None, "")]
    table = "".join(f"<tr><th style='text-align:left;padding-right:12px'>{html.escape(k)}</th>"
                    f"<td>{html.escape(v)}</td></tr>" for k, v in rows)
    cell = cell_text(recipe)
    image = ""
    if picture is not None:
        mime = "image/png" if picture[:4] == b"\x89PNG" else "image/jpeg"
        image = (f'<img src="data:{mime};base64,{base64.b64encode(picture).decode("ascii")}" '
                 'style="max-width:320px;height:auto;border-radius:4px;float:left;margin:0 12px 8px 0">')
    return {
        "text/html": f'<div class="yart-info">{image}<table style="font:12px monospace">{table}</table>'
                     f'<pre style="clear:both;font-size:12px">{html.escape(cell)}</pre></div>',
        "text/plain": "\n".join([*(f"{k}: {v}" for k, v in rows), "", cell]),
    }


#: The progress bar's parts: done, from the store, failed, running (theme colours, with fallbacks).
