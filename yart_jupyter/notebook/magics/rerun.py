"""``%yandexart rerun PATH|#N|OPERATION_ID [--no-cache]``: make a picture again from its recipe, and compare."""

from __future__ import annotations

import asyncio
from argparse import Namespace
from pathlib import Path
from typing import Any

from ...core import errors
from .face import Face
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart rerun", "Generate a picture again with the same parameters (from an image file's "
                                   "recipe, a history entry or a recorded operation) and say whether the pixels match; "
                                   "a generation that failed is sent again.")
    p.add_argument("source", metavar="PATH|#N|OPERATION_ID",
                   help="an image saved by yart_jupyter, a history entry (#1: the newest) or an operation id")
    p.add_argument("--no-cache", action="store_true", dest="no_cache",
                   help="generate anew even when the local store has this exact request")
    return p


def _origin(face: Face, source: str) -> tuple[dict[str, Any], bytes | None, str]:
    """The recipe, the picture to compare with (None when there is none: the generation failed, or
    its picture was pruned) and why there is none."""
    from ...core.provenance import info
    from ...present.records import why

    path = Path(source).expanduser()
    if path.exists():
        found = info(path)
        if isinstance(found, list):
            raise errors.MagicUsageError("%yandexart rerun: give one image file, not a notebook")
        return found, path.read_bytes(), ""
    try:
        record = face.store().entry(source) or face.store().get(source)
    except LookupError as exc:
        raise errors.MagicUsageError(f"%yandexart rerun: {exc}; %yandexart history lists them", hint="") from None
    request = record.request() if record is not None else None
    if record is None or request is None:
        raise errors.MagicUsageError(f"%yandexart rerun: {source!r} is neither a file, a history entry (#N) nor an "
                                     "operation in the store")
    if record.status == "pending":  # a second request would pay for it twice
        raise errors.MagicUsageError(f"%yandexart rerun: {source} is still running on the server: "
                                     f"%yandexart resume {record.operation_id} collects it", hint="")
    if record.status in ("queued", "submitting"):
        raise errors.MagicUsageError(f"%yandexart rerun: {source} is on its way ({record.status}): %yandexart jobs "
                                     "shows what runs in this kernel, %yandexart pending what an earlier one left",
                                     hint="")
    if record.status == "done" and record.image_path is not None and record.image_path.exists():
        image = record.to_image()
        return image.recipe(), image.image_bytes, ""
    recipe = {"messages": [{"text": m.text, "weight": m.weight} for m in request.messages],
              "seed": request.seed,
              "aspect": str(request.aspect), "mime_type": request.mime_type, "model_uri": request.model_uri,
              "operation_id": record.operation_id}
    reason = why(record) or record.status
    return recipe, None, ("its picture was pruned" if record.status == "done" else f"it {record.status}: {reason}")


async def handle(face: Face, options: Namespace) -> None:
    from ...core.models import portable_name
    from ...core.request import Message
    from ...core.status import BatchStatus
    from ...engine import Batch, prepare, run_in_view
    from ...media.pixels import same_pixels
    from ...present.html import message_bundle
    from ...present.live import CellView

    recipe, before, missing = await asyncio.to_thread(_origin, face, options.source)
    request = face.settings.request(
        [Message(m["text"], m.get("weight", 1.0)) for m in recipe["messages"]], seed=recipe["seed"],
        aspect=recipe["aspect"], mime_type=recipe.get("mime_type"),
        model_uri=portable_name(recipe["model_uri"]) if recipe.get("model_uri") else None,  # in my folder
    )
    status = BatchStatus(1)
    batch = prepare(face.store(), Batch([request], use_cache=not options.no_cache), status)
    view = CellView(status, errors_in_place=False, inline=face.settings.inline)
    image = (await run_in_view(face.client(), face.store(), batch, view, status=status))[0]
    same = before is not None and await asyncio.to_thread(same_pixels, before, image.image_bytes)
    if before is None:  # a generation that made no picture, made now: nothing to compare
        face.show(message_bundle(f"Rerun of {recipe['operation_id']}: made now; nothing to compare with "
                                 f"({missing}).", "info"))
        face.set_result(image)
        return
    if image.cached:
        verdict = "answered from the local store (no API call); use --no-cache to generate it again"
    elif same:
        verdict = "the new pixels are identical to the old ones"
    else:
        verdict = "the new pixels differ from the old ones"
    old, new = recipe.get("model_version"), image.model_version
    if old and new and old != new:
        verdict += f"; model version {old} then, {new} now: the same seed on another model version is another picture"
    if recipe.get("seed") is None:
        verdict = ("a new picture: the model takes no seed, so no request makes the same picture again "
                   "(the old one stays in the store)")
    face.show(message_bundle(f"Rerun of {recipe['operation_id']}: {verdict}.", "info" if same else "warning"))
    face.set_result(image)
