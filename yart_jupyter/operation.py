"""The long-running Operation as the REST API returns it, parsed tolerantly.

Accepts every variant seen: explicit nulls, a missing ``done``, ``@type`` and ``modelVersion``
present or absent, an ``error`` even while ``done`` is false.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any


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


def parse_operation(body: bytes | str | dict[str, Any]) -> Operation:
    """Parse an Operation body (bytes, text or already-decoded JSON); decode the image if any."""
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
        if encoded is not None:
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
