"""An emulated operation: what was asked, when it is ready, and how a read shows it."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from dataclasses import dataclass
from typing import Any

from ..core.request import AspectRatio
from .config import EmulatorConfig
from .images import render
from .shapes import TYPE_URL, rfc3339


@dataclass
class Operation:
    """One generation the emulator knows, by id."""

    id: str
    messages: list[dict[str, Any]]
    seed: int
    aspect: AspectRatio
    mime_type: str
    created: float
    ready_at: float
    failure: tuple[int, str] | None = None
    cancelled: bool = False
    image: bytes | None = None
    rendering: asyncio.Future[bytes] | None = None

    def render(self, config: EmulatorConfig) -> asyncio.Future[bytes]:
        """Draw the operation's image in a worker thread (padded to a realistic size if asked)."""
        if config.photo is not None and self.mime_type == "image/jpeg":
            future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            future.set_result(config.photo)
            return future
        low, high = config.payload_bytes
        pad = random.Random(self.id).randint(low, high) if high else 0
        return asyncio.get_running_loop().run_in_executor(
            None, render, self.messages, self.seed, self.aspect, self.mime_type, pad
        )

    async def to_json(self, config: EmulatorConfig) -> dict[str, Any]:
        """The operation as a read returns it: pending, failed, cancelled or done with its image."""
        created = rfc3339(self.created)
        data: dict[str, Any] = {"id": self.id, "description": "", "createdAt": created, "createdBy": "",
                                "modifiedAt": created}
        if self.cancelled:
            data.update(done=True, error={"code": 1, "message": "Operation cancelled", "details": []})
            return data
        if time.time() < self.ready_at:
            if not config.omit_done_while_pending:
                data["done"] = False
            data["metadata"] = None
            return data
        data["modifiedAt"] = rfc3339(self.ready_at)
        if self.failure is not None:
            code, message = self.failure
            data.update(done=True, error={"code": code, "message": message, "details": []})
            return data
        if self.image is None:
            self.image = await (self.rendering or self.render(config))
            self.rendering = None
        response: dict[str, Any] = {}
        if config.include_type:
            response["@type"] = TYPE_URL
        response["image"] = base64.b64encode(self.image).decode("ascii")
        if config.model_version is not None:
            response["modelVersion"] = config.model_version
        data.update(done=True, response=response)
        return data
