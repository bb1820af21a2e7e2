"""The long-running Operation as the REST API returns it, parsed tolerantly.

Accepts every variant seen: explicit nulls, a missing ``done``, ``@type`` and ``modelVersion``
present or absent, an ``error`` even while ``done`` is false.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from ..core.steps import steps_now, steps_on_loop


class MalformedOperation(ValueError):
    """The body is not an Operation we can read (truncated, not JSON, wrong shape)."""


@dataclass(frozen=True)
class OperationError:
    """The google.rpc.Status of a failed operation."""

    code: int | None
    message: str


@dataclass(frozen=True)
class Operation:
    """One read of an operation; ``image`` is decoded when the operation is done."""

    id: str
    done: bool
    error: OperationError | None = None
    image: bytes | None = None
    model_version: str | None = None
    description: str = ""

    @property
    def pending(self) -> bool:
        return not self.done and self.error is None


#: A big body's image is decoded this many base64 characters at a time (about 0.1 ms of work),
#: and :func:`read_operation` lets the event loop run between slices.
DECODE_SLICE = 64 * 1024
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_IMAGE_KEY = re.compile(rb'"image"\s*:\s*"')


def _decode_steps(encoded: bytes) -> Generator[None, None, bytes]:
    """Validate and decode base64 text one slice per step."""
    size = len(encoded)
    if b"\\" in encoded:  # a JSON encoder may escape "/" as "\/"; never split an escape between slices
        parts, i = [], 0
        while i < size:
            j = min(size, i + DECODE_SLICE)
            j += encoded[j - 1:j] == b"\\"
            parts.append(encoded[i:j].replace(b"\\/", b"/"))
            i = j
            yield
        encoded, size = b"".join(parts), sum(len(part) for part in parts)
    if size % 4:
        raise MalformedOperation("the image is not valid base64 (truncated)")
    decoded = []
    for i in range(0, size, DECODE_SLICE):
        piece = encoded[i:i + DECODE_SLICE]
        if piece.translate(None, _B64_ALPHABET) or (b"=" in piece and i + DECODE_SLICE < size):
            raise MalformedOperation("the image is not valid base64")
        try:
            decoded.append(binascii.a2b_base64(piece))
        except (binascii.Error, ValueError):
            raise MalformedOperation("the image is not valid base64") from None
        yield
    return b"".join(decoded)


def _parse_steps(body: bytes | str | dict[str, Any]) -> Generator[None, None, Operation]:
    """Parse an Operation, yielding between slices of work: a big body's image is cut out of
    the bytes and decoded slice by slice; only the small rest goes through the JSON parser."""
    if isinstance(body, bytes) and len(body) > DECODE_SLICE:
        match = _IMAGE_KEY.search(body)
        end = body.find(b'"', match.end()) if match else -1
        if match and end > 0:
            image = yield from _decode_steps(body[match.end():end])
            return _parse(body[:match.start()] + b'"image":null' + body[end + 1:], image)
    return _parse(body, None)


def parse_operation(body: bytes | str | dict[str, Any]) -> Operation:
    """Parse an Operation body (bytes, text or already-decoded JSON); decode the image if any."""
    return steps_now(_parse_steps(body))


async def read_operation(body: bytes) -> Operation:
    """:func:`parse_operation` on the event loop, letting it run between slices of a big image:
    no step takes more than a fraction of a millisecond, and no worker thread competes with the
    loop for the GIL (which, with the default 5 ms switch interval, stalls the loop for tens of
    milliseconds while several 1-2 MB bodies are decoded)."""
    return await steps_on_loop(_parse_steps(body))


def _parse(body: bytes | str | dict[str, Any], decoded: bytes | None) -> Operation:
    if isinstance(body, dict):
        data: Any = body
    else:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedOperation(f"the operation body is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise MalformedOperation("the body has no operation id")
    error = None
    raw_error = data.get("error")
    if isinstance(raw_error, dict):
        code = raw_error.get("code", raw_error.get("grpcCode"))
        error = OperationError(code if isinstance(code, int) else None, str(raw_error.get("message") or ""))
    image = None
    model_version = None
    response = data.get("response")
    if isinstance(response, dict):
        encoded = response.get("image")
        if decoded is not None:
            image = decoded
        elif encoded is not None:
            if not isinstance(encoded, str):
                raise MalformedOperation("the image is not base64 text")
            try:
                image = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise MalformedOperation("the image is not valid base64") from None
        version = response.get("modelVersion")
        model_version = version if isinstance(version, str) else None
    done = bool(data.get("done")) or image is not None
    if done and error is None and image is None:
        raise MalformedOperation("the operation is done but has neither an image nor an error")
    return Operation(
        id=data["id"], done=done, error=error, image=image, model_version=model_version,
        description=str(data.get("description") or ""),
    )
