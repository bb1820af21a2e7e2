"""The real service's shapes: error bodies, ids, times, the operation stub, and handler signals."""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

TYPE_URL = "type.googleapis.com/yandex.cloud.ai.foundation_models.v1.image_generation.ImageGenerationResponse"
MODERATION_MESSAGE = (
    "it is not possible to generate an image from this request because it may violate the terms of use"
)
#: The refusal the service is reported to give on either API (HTTP 400, code 3, a flat body).
RUSSIAN_MODERATION = "Я не могу сгенерировать это изображение. Давайте попробуем другую тему."
CODE_FOR_HTTP = {400: 3, 401: 16, 403: 7, 404: 5, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}
STATUS_TEXT = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
               429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
               503: "Service Unavailable", 504: "Gateway Timeout"}


class Dropped(Exception):
    """Raised inside a handler to drop the connection without an answer."""


class ApiError(Exception):
    """Raised inside a handler to answer with an error in the real shape."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, shape: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error in one of the two shapes the service uses (``flat`` or nested under ``error``)."""
    code = CODE_FOR_HTTP.get(status, 13)
    if shape == "yandex-flat":  # as reported on the Images API: the message twice, "error" a string
        body: dict[str, Any] = {"error": message, "code": code, "message": message, "details": []}
    elif shape == "openai":
        body = {"error": {"message": message, "type": "invalid_request_error", "code": str(code)}}
    elif shape == "flat":
        body = {"code": code, "message": message, "details": []}
    else:
        body = {"error": {"grpcCode": code, "httpCode": status, "message": message,
                          "httpStatus": STATUS_TEXT.get(status, "Error"), "details": []}}
    return web.json_response(body, status=status, headers={**ids(), **(headers or {})})


def drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def int_field(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ApiError(400, f"{name} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise ApiError(400, f"{name} must be an integer")


def operation_stub(op_id: str) -> dict[str, Any]:
    return {"id": op_id, "description": "", "createdAt": None, "createdBy": "", "modifiedAt": None,
            "done": False, "metadata": None}


def ids() -> dict[str, str]:
    return {"x-request-id": secrets.token_hex(16), "x-server-trace-id": secrets.token_hex(8)}


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))
