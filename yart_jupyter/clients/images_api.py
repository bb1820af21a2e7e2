"""The synchronous Images API's answer, parsed tolerantly (``b64_json`` or ``url``, ``revised_prompt``).

``POST /v1/images/generations`` answers ``{"created": ..., "data": [{"b64_json": "..."}]}`` in a few
seconds; there is no operation, so a picture is named by an id made from its intent's key.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

from .operation import DECODE_SLICE, MalformedOperation, _decode_steps

#: The least time one Images API request is given: a generation takes seconds, and an answer cut
#: off by a short timeout is a picture billed and lost.
IMAGES_MIN_TIMEOUT = 60.0
#: How a picture of the Images API is named (it has no operation id).
IMAGES_ID_PREFIX = "img-"
_B64_KEY = re.compile(rb'"b64_json"\s*:\s*"')


@dataclass(frozen=True)
class ImagesAnswer:
    """One answer of the Images API: the picture's bytes or a link to them, and a rewritten prompt."""

    image: bytes | None
    url: str | None = None
    revised_prompt: str | None = None


def images_id(key: str) -> str:
    """The id a picture of the Images API is kept under: ``img-`` and 16 hex digits of its intent's key."""
    return IMAGES_ID_PREFIX + key.replace("-", "")[:16]


def is_images_id(reference: str) -> bool:
    """True for an id made by :func:`images_id` (never an operation id: those have no dash)."""
    return reference.startswith(IMAGES_ID_PREFIX)


async def read_images_answer(body: bytes) -> ImagesAnswer:
    """Parse an answer, decoding a big picture in slices that let the event loop run between them."""
    image: bytes | None = None
    match = _B64_KEY.search(body) if len(body) > DECODE_SLICE else None
    end = body.find(b'"', match.end()) if match else -1
    if match and end > 0:
        steps = _decode_steps(body[match.end():end])
        try:
            while True:
                next(steps)
                await asyncio.sleep(0)
        except StopIteration as done:
            image = done.value
        except MalformedOperation as exc:
            raise MalformedOperation(str(exc).replace("operation", "answer")) from None
        body = body[:match.start()] + b'"b64_json":null' + body[end + 1:]
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedOperation(f"the Images API answer is not JSON ({exc})") from None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise MalformedOperation("the Images API answer has no picture (no data[0])")
    item = items[0]
    if image is None and isinstance(item.get("b64_json"), str):
        import base64
        import binascii

        try:
            image = base64.b64decode(item["b64_json"], validate=True)
        except (binascii.Error, ValueError):
            raise MalformedOperation("the picture is not valid base64") from None
    url = item.get("url") if isinstance(item.get("url"), str) else None
    if image is None and url is None:
        raise MalformedOperation("the Images API answer has neither b64_json nor url")
    revised = item.get("revised_prompt")
    return ImagesAnswer(image, url, revised if isinstance(revised, str) and revised else None)
