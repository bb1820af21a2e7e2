"""The emulator's endpoints: the start, the Images API, operation reads and cancels, and its control routes."""

from __future__ import annotations

import asyncio
import base64
import collections
import functools
import math
import random
import string
import threading
import time
from typing import Any

from aiohttp import web

from ..core.request import AspectRatio
from .config import EmulatorConfig, Fault
from .faults import FAILURE
from .iam import Iam
from .images import render
from .operations import Operation
from .shapes import ApiError, dumps, error_response, ids, operation_stub
from .validation import model_name, parse_images, parse_start

_ID_ALPHABET = string.ascii_lowercase + string.digits


class Routes:
    """Every request handler of the emulated service; :class:`.server.Emulator` holds the state they share."""

    config: EmulatorConfig
    operations: dict[str, Operation]
    faults: list[Fault]
    stats: Any
    iam: Iam
    recent: collections.deque[tuple[str, str, dict[str, str]]]
    _idempotency: dict[str, str]
    _pictures: dict[str, bytes]
    _gen_times: collections.deque[float]
    _read_times: collections.deque[float]
    _day_times: collections.deque[float]
    _rng: random.Random
    _lock: threading.Lock

    url: str

    def reset(self) -> None:
        """Forget faults and statistics (the server's control method)."""
        raise NotImplementedError

    def inject(self, kind: str, phase: str = "any", times: int = 1, **options: Any) -> Fault:
        """Queue a fault (the server's control method)."""
        raise NotImplementedError

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None,
               phase: str = "start") -> web.Response:
        shape = self.config.images_error_shape if phase == "images" else self.config.error_shape
        return error_response(status, message, shape, headers)

    def _quota(self, window: collections.deque[float], limit: int, span: float, what: str) -> None:
        """Refuse with 429 past ``limit`` in ``span`` seconds; ``what`` names the quota as the service does
        (``ai.imageGenerationRequestsPerMinute.rate exceeded`` is the real per-minute text)."""
        now = time.monotonic()
        while window and window[0] <= now - span:
            window.popleft()
        if len(window) >= limit:
            wait = window[0] + span - now
            headers = {"Retry-After": f"{max(1, int(wait + 0.999))}"} if self.config.send_retry_after else {}
            text = (f"{what}.rate exceeded" if what.startswith("ai.")
                    else f"Quota exceeded: {what} limit is {limit} per {span:g} s")
            raise ApiError(429, text, headers)
        window.append(now)


    async def _start(self, request: web.Request) -> web.Response:
        self.iam.authenticate(request)
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Request body is not valid JSON") from None
        key = request.headers.get("Idempotency-Key")
        if key and key in self._idempotency:
            self.stats.idempotent_replays += 1
            return web.json_response(operation_stub(self._idempotency[key]), headers=ids())
        parsed = parse_start(body, request.headers.get("x-folder-id"), self.config, self._rng)
        self._quota(self._gen_times, self.config.generate_per_minute, self.config.generate_window,
                    "ai.imageGenerationRequestsPerMinute")
        if self.config.generate_per_day is not None:
            self._quota(self._day_times, self.config.generate_per_day, 86_400.0, "ai.imageGenerationRequestsPerDay")
        messages, seed, aspect, mime = parsed
        op_id = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(20))
        now = time.time()
        model = model_name(str(body["modelUri"]).split("/", 3)[3])
        hangs = model in self.config.hanging_models  # reported: such operations stay done: false
        op = self.operations[op_id] = Operation(
            op_id, messages, seed, aspect, mime, now,
            math.inf if hangs else now + self.config.duration.sample(self._rng), failure=request.get(FAILURE),
        )
        if op.failure is None:  # drawn while it "generates", so it is there the moment it is done
            op.rendering = op.render(self.config)
        if key:
            self._idempotency[key] = op_id
        self.stats.operations_created += 1
        return web.json_response(operation_stub(op_id), headers=ids())

    async def _images(self, request: web.Request) -> web.Response:
        """The synchronous Images API: the picture in the answer after a few seconds, a new one each call."""
        self.iam.authenticate(request)
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Request body is not valid JSON") from None
        folder = request.headers.get("OpenAI-Project") or request.headers.get("x-folder-id")
        name, prompt, size, ratio = parse_images(body, folder, self.config)
        self._quota(self._gen_times, self.config.generate_per_minute, self.config.generate_window,
                    "ai.imageGenerationRequestsPerMinute")
        if self.config.generate_per_day is not None:
            self._quota(self._day_times, self.config.generate_per_day, 86_400.0, "ai.imageGenerationRequestsPerDay")
        self.stats.operations_created += 1
        self.stats.images_generated += 1
        self.stats.images_in_flight += 1
        self.stats.images_peak = max(self.stats.images_peak, self.stats.images_in_flight)
        try:
            return await self._make_picture(name, prompt, size, ratio)
        finally:
            self.stats.images_in_flight -= 1

    async def _make_picture(self, name: str, prompt: str, size: tuple[int, int], ratio: AspectRatio) -> web.Response:
        """Draw the picture and answer once the emulated generation time has passed."""
        started = time.monotonic()
        seed = self._rng.randrange(1, 2**31)  # never reported: every call is a new picture
        if self.config.photo is not None:
            picture = self.config.photo
        else:
            low, high = self.config.payload_bytes
            pad = self._rng.randint(low, high) if high else 0
            picture = await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(render, [{"text": prompt, "weight": 1}], seed, ratio, "image/jpeg", pad,
                                        size=size, label=f"EMULATED · {name} · {size[0]}×{size[1]}"))
        seconds = self.config.images_duration.sample(self._rng)
        self.stats.images_seconds.append(seconds)
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
        item: dict[str, Any] = {}
        if self.config.images_as_url:
            picture_id = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(20))
            self._pictures[picture_id] = picture
            item["url"] = f"{self.url}/_emulator/pictures/{picture_id}"
        else:
            item["b64_json"] = base64.b64encode(picture).decode("ascii")
        if self.config.revised_prompt:
            item["revised_prompt"] = self.config.revised_prompt
        return web.json_response({"created": int(time.time()), "data": [item]}, headers=ids(), dumps=dumps)

    async def _picture(self, request: web.Request) -> web.Response:
        picture = self._pictures.get(request.match_info["id"])
        if picture is None:
            raise ApiError(404, "no such picture")
        return web.Response(body=picture, content_type="image/jpeg")

    async def _read(self, request: web.Request) -> web.Response:
        self.iam.authenticate(request)
        self._quota(self._read_times, self.config.reads_per_second, 1.0, "operation reads")
        op = self._lookup(request.match_info["id"])
        return web.json_response(await op.to_json(self.config), headers=ids(), dumps=dumps)

    async def _cancel(self, request: web.Request) -> web.Response:
        self.iam.authenticate(request)
        op = self._lookup(request.match_info["id"])
        if time.time() < op.ready_at and op.failure is None:
            op.cancelled = True
        return web.json_response(await op.to_json(self.config), headers=ids(), dumps=dumps)

    def _lookup(self, op_id: str) -> Operation:
        op = self.operations.get(op_id)
        if op is None or time.time() > op.created + self.config.keep_seconds:
            raise ApiError(404, f"Operation {op_id} not found")
        return op

    # -- control endpoints (not part of the real API) ----------------------------------------

    async def _control_stats(self, request: web.Request) -> web.Response:
        data = self.stats.to_json()
        data["operations"] = len(self.operations)
        data["pending_faults"] = sum(f.times for f in self.faults)
        return web.json_response(data)

    async def _control_operations(self, request: web.Request) -> web.Response:
        """When each operation was created and done (Unix times): what benchmarks measure against."""
        return web.json_response({op.id: {"created": op.created, "ready_at": op.ready_at}
                                  for op in self.operations.values()})

    async def _control_faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        items = body if isinstance(body, list) else [body]
        try:
            for item in items:
                self.inject(**item)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from None
        return web.json_response({"queued": len(items)})

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})
