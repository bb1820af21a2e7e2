"""An experiment as one picture with its labels drawn in (``--grid-out``, ``exp.save_grid``): for papers and slides.

The sheet is white with dark text (print-friendly), the title and the shared parameters on top,
column labels above and row labels left of each grid, one grid per value of a third axis. Labels
are drawn in DejaVu Sans when the system has it (it covers Cyrillic), else in Pillow's own font.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..media.image import write_atomic

if TYPE_CHECKING:
    from .grid import GridSource

_FONTS = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf")
_INK, _MUTED, _PAPER, _EMPTY = (20, 20, 20), (110, 110, 110), (255, 255, 255), (236, 236, 236)
PAD = 12


def _font(size: int) -> Any:
    from PIL import ImageFont

    for name in _FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _fit(draw: Any, text: str, font: Any, width: int) -> str:
    """The text, cut with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def contact_sheet(experiment: GridSource, *, cell: int = 256) -> Any:
    """The sheet as a PIL image: pictures fitted in ``cell``-pixel squares, labels in the margins."""
    from PIL import Image, ImageDraw

    from .grid import fixed_parameters, layout

    sections, row_labels, col_labels = layout(experiment)
    label_font, title_font, small = _font(max(12, cell // 14)), _font(max(14, cell // 11)), _font(max(11, cell // 18))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = min(cell, max((int(probe.textlength(t, font=label_font)) for t in row_labels), default=0) + 2 * PAD) \
        if row_labels else PAD
    line = int(label_font.size * 1.5) if hasattr(label_font, "size") else 18
    title_h = int(getattr(title_font, "size", 16) * 1.6) + int(getattr(small, "size", 12) * 1.6)
    section_h = line if any(title for title, _ in sections) else 0
    grid_w = left + len(col_labels) * (cell + PAD)
    grid_h = section_h + line + max(1, len(row_labels)) * (cell + PAD)
    width, height = max(grid_w + PAD, 480), title_h + PAD + len(sections) * grid_h + PAD
    sheet = Image.new("RGB", (width, height), _PAPER)
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, PAD), _fit(draw, experiment.title, title_font, width - 2 * PAD), fill=_INK, font=title_font)
    fixed = " · ".join([experiment.shape(), *fixed_parameters(experiment), experiment.id])
    draw.text((PAD, PAD + int(getattr(title_font, "size", 16) * 1.5)), _fit(draw, fixed, small, width - 2 * PAD),
              fill=_MUTED, font=small)
    y = title_h + PAD
    for title, rows in sections:
        if title:
            draw.text((PAD, y), title, fill=_INK, font=label_font)
            y += section_h
        for c, label in enumerate(col_labels):
            x = left + c * (cell + PAD)
            text = _fit(draw, label, label_font, cell)
            draw.text((x + (cell - draw.textlength(text, font=label_font)) / 2, y), text, fill=_INK, font=label_font)
        y += line
        for r, row in enumerate(rows):
            if row_labels:
                text = _fit(draw, row_labels[r], label_font, left - 2 * PAD)
                draw.text((left - PAD - draw.textlength(text, font=label_font), y + cell / 2 - line / 3), text,
                          fill=_INK, font=label_font)
            for c, slot in enumerate(row):
                x = left + c * (cell + PAD)
                if slot.image is not None:
                    with Image.open(io.BytesIO(slot.image.image_bytes)) as picture:
                        picture.thumbnail((cell, cell), Image.Resampling.LANCZOS)
                        tile = picture.convert("RGB")
                    sheet.paste(tile, (x + (cell - tile.width) // 2, y + (cell - tile.height) // 2))
                else:
                    draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=_EMPTY)
                    word = "failed" if slot.state == "failed" else slot.state
                    draw.text((x + PAD, y + cell / 2 - line / 2), word, fill=_MUTED, font=small)
            y += cell + PAD
    return sheet


#: How the common types are written (others with Pillow's defaults).
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {"JPEG": {"quality": 90}, "PNG": {"optimize": True}}
#: Why a sheet's name is refused: a file must be the type its name says.
SHEET_TYPES = "a contact sheet is written as the type its name says (.png, .jpg, .webp, .gif ...)"


def sheet_format(path: Path) -> str | None:
    """The picture type a sheet's name asks for (Pillow's name of it: PNG, JPEG, WEBP ...), PNG for a
    name without a suffix, or None for a suffix Pillow cannot write (it would mislabel the file)."""
    from PIL import Image

    if path.suffix == "":
        return "PNG"
    writable = {ext: name for ext, name in Image.registered_extensions().items() if name in Image.SAVE}
    return writable.get(path.suffix.lower())


def save_contact_sheet(experiment: GridSource, path: Path, *, cell: int = 256, overwrite: bool = False) -> Path:
    """Write the sheet to ``path`` as the type its name says (a name without a suffix gets .png)."""
    kind = sheet_format(path)
    if kind is None:
        raise ValueError(f"{path.name}: {SHEET_TYPES}, and {path.suffix} is not one Pillow can write")
    if path.suffix == "":
        path = path.with_suffix(".png")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    sheet = contact_sheet(experiment, cell=cell)
    out = io.BytesIO()
    sheet.save(out, kind, **_SAVE_OPTIONS.get(kind, {}))
    write_atomic(path, out.getvalue())
    return path
