"""An aiohttp server that speaks the YandexART REST API: same endpoints, shapes, errors, quotas.

It binds loopback only, keeps its operations in memory, renders deterministic synthetic
pictures, and can be told to misbehave (see :class:`~.config.Fault`) so the client's handling of
every fault can be tested for real, over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import ipaddress
import json
import random
import re
import secrets
import string
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ..request import MAX_SEED, MAX_TEXT, AspectRatio
from .config import EmulatorConfig, Fault
from .images import render

TYPE_URL = "type.googleapis.com/yandex.cloud.ai.foundation_models.v1.image_generation.ImageGenerationResponse"
MODERATION_MESSAGE = (
    "it is not possible to generate an image from this request because it may violate the terms of use"
)
_HTTP_FOR_CODE = {1: 499, 3: 400, 4: 504, 5: 404, 7: 403, 8: 429, 13: 500, 14: 503, 16: 401}
_CODE_FOR_HTTP = {400: 3, 401: 16, 403: 7, 404: 5, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}
_STATUS_TEXT = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                503: "Service Unavailable", 504: "Gateway Timeout"}
_ID_ALPHABET = string.ascii_lowercase + string.digits
_FAILURE = web.RequestKey("failure", tuple)


class _Dropped(Exception):
    """Raised inside a handler to drop the connection without an answer."""


class _ApiError(Exception):
    """Raised inside a handler to answer with an error in the real shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Operation:
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


@dataclass
class Stats:
    """What reached the emulator; tests assert on it."""

    requests: int = 0
    by_phase: collections.Counter[str] = field(default_factory=collections.Counter)
    by_status: collections.Counter[int] = field(default_factory=collections.Counter)
    operations_created: int = 0
    faults_injected: int = 0
    idempotent_replays: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_phase": dict(self.by_phase),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "operations_created": self.operations_created,
            "faults_injected": self.faults_injected,
            "idempotent_replays": self.idempotent_replays,
        }


class Emulator:
    """The emulated service; ``await start()`` on a loop, or ``start_in_thread()`` for a background one."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.operations: dict[str, _Operation] = {}
        self.faults: list[Fault] = []
        self.stats = Stats()
        self._idempotency: dict[str, str] = {}
        self._issued: dict[str, float] = {}
        self._gen_times: collections.deque[float] = collections.deque()
        self._read_times: collections.deque[float] = collections.deque()
        self._rng = random.Random(self.config.random_seed)
        #: The latest requests (method, path, headers), newest last, for tests to inspect.
        self.recent: collections.deque[tuple[str, str, dict[str, str]]] = collections.deque(maxlen=500)
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.url = ""

    # -- control -----------------------------------------------------------------------------

    def inject(self, kind: str, phase: str = "any", times: int = 1, **options: Any) -> Fault:
        """Queue a fault for the next ``times`` requests of ``phase``."""
        fault = Fault(kind, phase, times, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def reset(self) -> None:
        """Forget faults and statistics (operations are kept, as on the real service)."""
        with self._lock:
            self.faults.clear()
            self.stats = Stats()
            self.recent.clear()
            self._gen_times.clear()
            self._read_times.clear()

    def issue_token(self, ttl: float | None = None) -> str:
        """A fresh IAM token the emulator accepts until it expires."""
        token = "t1.emu." + secrets.token_urlsafe(24)
        self._issued[token] = time.time() + (self.config.iam_token_ttl if ttl is None else ttl)
        return token

    def _take_fault(self, phase: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.phase in (phase, "any"):
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    self.stats.faults_injected += 1
                    return fault
            if self.config.fault_rate and phase in ("start", "poll") and self._rng.random() < self.config.fault_rate:
                self.stats.faults_injected += 1
                kind = self._rng.choice(self.config.fault_kinds)
                status = self._rng.choice([429, 500, 502, 503, 504])
                return Fault(kind, phase, 1, status=status, seconds=0.5)
        return None

    # -- server ------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes, middlewares=[self._middleware])
        app.router.add_post("/foundationModels/v1/imageGenerationAsync", self._start)
        app.router.add_route("*", "/operations/{id}:cancel", self._cancel)
        app.router.add_get("/operations/{id}", self._read)
        app.router.add_post("/iam/v1/tokens", self._tokens)
        app.router.add_get("/computeMetadata/v1/instance/service-accounts/default/token", self._metadata)
        app.router.add_get("/_emulator/stats", self._control_stats)
        app.router.add_get("/_emulator/operations", self._control_operations)
        app.router.add_post("/_emulator/faults", self._control_faults)
        app.router.add_post("/_emulator/reset", self._control_reset)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (loopback only; port 0 picks a free one); return the base URL."""
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the emulator binds loopback only, not {host}")
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Run the server on its own loop in a daemon thread; return once it is listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start(host, port))
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="yart-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self.url

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None
            self._loop = None

    # -- plumbing ----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        phase = _phase(request.path)
        if phase != "control":
            self.stats.requests += 1
            self.stats.by_phase[phase] += 1
            self.recent.append((request.method, request.path, dict(request.headers)))
        fault = self._take_fault(phase) if phase != "control" else None
        try:
            if fault is not None:
                response = await self._apply_fault(fault, request, handler)
            else:
                response = await handler(request)
        except _Dropped:
            _drop(request)
            raise asyncio.CancelledError() from None
        except _ApiError as exc:
            response = self._error(exc.status, exc.message)
        except web.HTTPException as exc:
            response = self._error(exc.status, exc.reason)
        except Exception as exc:  # never crash on garbage: answer 500 in the real shape
            response = self._error(500, f"internal emulator error: {type(exc).__name__}")
        self.stats.by_status[response.status] += 1
        return response

    async def _apply_fault(
        self, fault: Fault, request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if fault.kind == "status":
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            return self._error(fault.status, fault.message, headers)
        if fault.kind == "drop_before":
            raise _Dropped()
        if fault.kind == "slow":
            await asyncio.sleep(fault.seconds)
            return await handler(request)
        if fault.kind == "malformed":
            return web.Response(status=200, text="<html><body>502 upstream hiccup</body>", content_type="text/html")
        if fault.kind == "fail":
            request[_FAILURE] = (fault.code, fault.message)
            return await handler(request)
        response = await handler(request)
        if fault.kind == "drop_after":
            raise _Dropped()
        assert isinstance(response, web.Response) and response.body is not None
        body = bytes(response.body)  # type: ignore[arg-type]
        return web.Response(status=200, body=body[: len(body) // 2], content_type="application/json")

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        code = _CODE_FOR_HTTP.get(status, 13)
        if self.config.error_shape == "flat":
            body: dict[str, Any] = {"code": code, "message": message, "details": []}
        else:
            body = {"error": {"grpcCode": code, "httpCode": status, "message": message,
                              "httpStatus": _STATUS_TEXT.get(status, "Error"), "details": []}}
        return web.json_response(body, status=status, headers={**_ids(), **(headers or {})})

    def _fail(self, status: int, message: str) -> _ApiError:
        return _ApiError(status, message)

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme == "Api-Key" and value in self.config.api_keys:
            return
        if scheme == "Bearer":
            if value in self.config.iam_tokens:
                return
            expiry = self._issued.get(value)
            if expiry is not None and expiry > time.time():
                return
            if expiry is not None:
                raise self._fail(401, "The token has expired")
        if not header:
            raise self._fail(401, "Unauthenticated: no Authorization header")
        raise self._fail(401, "Unknown api key or IAM token")

    def _quota(self, window: collections.deque[float], limit: int, span: float, what: str) -> None:
        now = time.monotonic()
        while window and window[0] <= now - span:
            window.popleft()
        if len(window) >= limit:
            wait = window[0] + span - now
            headers = {"Retry-After": f"{max(1, int(wait + 0.999))}"} if self.config.send_retry_after else {}
            raise _QuotaExceeded(f"Quota exceeded: {what} limit is {limit} per {span:g} s", headers)
        window.append(now)

    # -- API ---------------------------------------------------------------------------------

    async def _start(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise self._fail(400, "Request body is not valid JSON") from None
        key = request.headers.get("Idempotency-Key")
        if key and key in self._idempotency:
            self.stats.idempotent_replays += 1
            return web.json_response(_operation_stub(self._idempotency[key]), headers=_ids())
        parsed = self._validate(body, request.headers.get("x-folder-id"))
        try:
            self._quota(self._gen_times, self.config.generate_per_minute, self.config.generate_window,
                        "image generation requests")
        except _QuotaExceeded as exc:
            return self._error(429, str(exc), exc.headers)
        messages, seed, aspect, mime = parsed
        op_id = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(20))
        now = time.time()
        op = self.operations[op_id] = _Operation(
            op_id, messages, seed, aspect, mime, now, now + self.config.duration.sample(self._rng),
            failure=request.get(_FAILURE),
        )
        if op.failure is None:  # drawn while it "generates", so it is there the moment it is done
            op.rendering = self._render(op)
        if key:
            self._idempotency[key] = op_id
        self.stats.operations_created += 1
        return web.json_response(_operation_stub(op_id), headers=_ids())

    def _validate(
        self, body: Any, folder_header: str | None
    ) -> tuple[list[dict[str, Any]], int, AspectRatio, str]:
        if not isinstance(body, dict):
            raise self._fail(400, "Request body must be a JSON object")
        uri = body.get("modelUri")
        match = re.fullmatch(r"art://([^/]+)/yandex-art(?:/latest|/rc)?", uri) if isinstance(uri, str) else None
        if not isinstance(uri, str) or not uri.startswith("art://"):
            raise self._fail(400, f"Invalid model uri: {uri!r}")
        if match is None or match.group(1) == "yandex-art":
            raise self._fail(403, f"Access to model {uri} denied")
        folder = match.group(1)
        if folder not in self.config.folders or (folder_header and folder_header not in self.config.folders):
            raise self._fail(403, f"Permission to [resource-manager.folder {folder}] denied")
        options = body.get("generationOptions") or {}
        if not isinstance(options, dict):
            raise self._fail(400, "generationOptions must be an object")
        mime = options.get("mimeType") or "image/jpeg"
        if mime not in ("image/jpeg", "image/png"):
            raise self._fail(400, f"Unsupported mime type: {mime}")
        seed = _int_field(options.get("seed", 0), "seed", self._fail)
        if not 0 <= seed <= MAX_SEED:
            raise self._fail(400, f"seed must be in [0, {MAX_SEED}]")
        if seed == 0:
            seed = self._rng.randrange(1, MAX_SEED)
        ratio = options.get("aspectRatio") or {}
        if not isinstance(ratio, dict):
            raise self._fail(400, "aspectRatio must be an object")
        width = _int_field(ratio.get("widthRatio", 1), "widthRatio", self._fail)
        height = _int_field(ratio.get("heightRatio", 1), "heightRatio", self._fail)
        try:
            aspect = AspectRatio.parse((width, height))
        except ValueError:
            raise self._fail(400, f"Unsupported aspect ratio {width}:{height}") from None
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise self._fail(400, "messages must contain at least one message")
        cleaned = []
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("text"), str):
                raise self._fail(400, "each message needs a text")
            text = message["text"]
            if not text.strip():
                raise self._fail(400, "message text must not be empty")
            if len(text) > MAX_TEXT:
                raise self._fail(400, f"message text is too long: {len(text)} > {MAX_TEXT} characters")
            try:
                weight = float(message.get("weight", 1))
            except (TypeError, ValueError):
                raise self._fail(400, "weight must be a number") from None
            if not weight > 0:
                raise self._fail(400, "negative prompts are currently not supported")
            lowered = text.lower()
            if any(word in lowered for word in self.config.moderation_words):
                raise self._fail(400, MODERATION_MESSAGE)
            cleaned.append({"text": text, "weight": weight})
        return cleaned, seed, aspect, mime

    async def _read(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        try:
            self._quota(self._read_times, self.config.reads_per_second, 1.0, "operation reads")
        except _QuotaExceeded as exc:
            return self._error(429, str(exc), exc.headers)
        op = self._lookup(request.match_info["id"])
        return web.json_response(await self._operation_json(op), headers=_ids(), dumps=_dumps)

    async def _cancel(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        op = self._lookup(request.match_info["id"])
        if time.time() < op.ready_at and op.failure is None:
            op.cancelled = True
        return web.json_response(await self._operation_json(op), headers=_ids(), dumps=_dumps)

    def _lookup(self, op_id: str) -> _Operation:
        op = self.operations.get(op_id)
        if op is None or time.time() > op.created + self.config.keep_seconds:
            raise self._fail(404, f"Operation {op_id} not found")
        return op

    def _render(self, op: _Operation) -> asyncio.Future[bytes]:
        """Draw the operation's image in a worker thread (padded to a realistic size if asked)."""
        low, high = self.config.payload_bytes
        pad = random.Random(op.id).randint(low, high) if high else 0
        return asyncio.get_running_loop().run_in_executor(
            None, render, op.messages, op.seed, op.aspect, op.mime_type, pad
        )

    async def _operation_json(self, op: _Operation) -> dict[str, Any]:
        created = _rfc3339(op.created)
        data: dict[str, Any] = {"id": op.id, "description": "", "createdAt": created, "createdBy": "",
                                "modifiedAt": created}
        if op.cancelled:
            data.update(done=True, error={"code": 1, "message": "Operation cancelled", "details": []})
            return data
        if time.time() < op.ready_at:
            if not self.config.omit_done_while_pending:
                data["done"] = False
            data["metadata"] = None
            return data
        data["modifiedAt"] = _rfc3339(op.ready_at)
        if op.failure is not None:
            code, message = op.failure
            data.update(done=True, error={"code": code, "message": message, "details": []})
            return data
        if op.image is None:
            op.image = await (op.rendering or self._render(op))
            op.rendering = None
        response: dict[str, Any] = {}
        if self.config.include_type:
            response["@type"] = TYPE_URL
        response["image"] = base64.b64encode(op.image).decode("ascii")
        if self.config.model_version is not None:
            response["modelVersion"] = self.config.model_version
        data.update(done=True, response=response)
        return data

    # -- tokens ------------------------------------------------------------------------------

    async def _tokens(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise self._fail(400, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise self._fail(400, "Request body must be a JSON object")
        if "yandexPassportOauthToken" in body:
            if body["yandexPassportOauthToken"] not in self.config.oauth_tokens:
                raise self._fail(401, "The OAuth token is invalid or expired")
        elif "jwt" in body:
            self._check_jwt(str(body["jwt"]))
        else:
            raise self._fail(400, "Either yandexPassportOauthToken or jwt is required")
        token = self.issue_token()
        return web.json_response(
            {"iamToken": token, "expiresAt": _rfc3339(self._issued[token])}, headers=_ids()
        )

    def _check_jwt(self, token: str) -> None:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise self._fail(400, "The JWT is malformed") from None
        public = self.config.service_account_keys.get(str(header.get("kid")))
        if header.get("alg") != "PS256" or public is None:
            raise self._fail(401, "Unknown key id or wrong algorithm (PS256 is required)")
        try:
            jwt.decode(token, public, algorithms=["PS256"],
                       audience="https://iam.api.cloud.yandex.net/iam/v1/tokens")
        except jwt.PyJWTError as exc:
            raise self._fail(401, f"The JWT is invalid: {exc}") from None

    async def _metadata(self, request: web.Request) -> web.Response:
        if request.headers.get("Metadata-Flavor") != "Google":
            raise self._fail(403, "Metadata-Flavor: Google header is required")
        token = self.issue_token()
        ttl = int(self._issued[token] - time.time())
        return web.json_response({"access_token": token, "expires_in": ttl, "token_type": "Bearer"})

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
            raise self._fail(400, str(exc)) from None
        return web.json_response({"queued": len(items)})

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})


class _QuotaExceeded(Exception):
    def __init__(self, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.headers = headers


def _phase(path: str) -> str:
    if path.startswith("/_emulator/"):
        return "control"
    if path.startswith("/foundationModels/"):
        return "start"
    if path.endswith(":cancel"):
        return "cancel"
    if path.startswith("/operations/"):
        return "poll"
    return "token"


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _int_field(value: Any, name: str, fail: Callable[[int, str], _ApiError]) -> int:
    if isinstance(value, bool):
        raise fail(400, f"{name} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise fail(400, f"{name} must be an integer")


def _operation_stub(op_id: str) -> dict[str, Any]:
    return {"id": op_id, "description": "", "createdAt": None, "createdBy": "", "modifiedAt": None,
            "done": False, "metadata": None}


def _ids() -> dict[str, str]:
    return {"x-request-id": secrets.token_hex(16), "x-server-trace-id": secrets.token_hex(8)}


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))
