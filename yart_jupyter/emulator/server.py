"""An aiohttp server that speaks the YandexART REST API: same endpoints, shapes, errors, quotas.

It binds loopback only, keeps its operations in memory, renders deterministic synthetic
pictures, and can be told to misbehave (see :class:`~.config.Fault`) so the client's handling of
every fault can be tested for real, over HTTP.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import random
import string
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .config import EmulatorConfig, Fault
from .faults import apply_fault
from .iam import Iam
from .operations import Operation
from .routes import Routes
from .shapes import ApiError, Dropped, drop

_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass
class Stats:
    """What reached the emulator; tests assert on it."""

    requests: int = 0
    by_phase: collections.Counter[str] = field(default_factory=collections.Counter)
    by_status: collections.Counter[int] = field(default_factory=collections.Counter)
    operations_created: int = 0
    #: 429s answered, by phase (start, poll, ...): a quota overrun, seen as the service would count it.
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    #: The most operation reads that arrived within any second (refused ones included).
    reads_peak: int = 0
    faults_injected: int = 0
    idempotent_replays: int = 0
    #: Pictures the Images API made (each one billed).
    images_generated: int = 0
    #: Images API requests being worked on now, and the most at once (a sweep's must overlap).
    images_in_flight: int = 0
    images_peak: int = 0
    #: How long each Images API request was made to take, in order (a benchmark's floor).
    images_seconds: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_phase": dict(self.by_phase),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "operations_created": self.operations_created,
            "refused": dict(self.refused),
            "reads_peak": self.reads_peak,
            "faults_injected": self.faults_injected,
            "idempotent_replays": self.idempotent_replays,
            "images_generated": self.images_generated,
            "images_peak": self.images_peak,
        }


class Emulator(Routes):
    """The emulated service; ``await start()`` on a loop, or ``start_in_thread()`` for a background one."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.operations: dict[str, Operation] = {}
        self.faults: list[Fault] = []
        self.stats = Stats()
        self._idempotency: dict[str, str] = {}
        self._pictures: dict[str, bytes] = {}
        self.iam = Iam(self.config)
        self._gen_times: collections.deque[float] = collections.deque()
        self._read_times: collections.deque[float] = collections.deque()
        #: When the reads of the last second arrived (for ``stats.reads_peak``).
        self._arrived: collections.deque[float] = collections.deque()
        self._day_times: collections.deque[float] = collections.deque()
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
            self._day_times.clear()

    def issue_token(self, ttl: float | None = None) -> str:
        """A fresh IAM token the emulator accepts until it expires."""
        return self.iam.issue_token(ttl)

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
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_get("/_emulator/pictures/{id}", self._picture)
        app.router.add_route("*", "/operations/{id}:cancel", self._cancel)
        app.router.add_get("/operations/{id}", self._read)
        app.router.add_post("/iam/v1/tokens", self.iam.tokens)
        app.router.add_get("/computeMetadata/v1/instance/service-accounts/default/token", self.iam.metadata)
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
        if phase == "poll":
            self._arrived.append(time.monotonic())
            while self._arrived[0] <= self._arrived[-1] - 1.0:
                self._arrived.popleft()
            self.stats.reads_peak = max(self.stats.reads_peak, len(self._arrived))
        fault = self._take_fault(phase) if phase != "control" else None
        try:
            if fault is not None:
                response = await apply_fault(fault, request, handler)
            else:
                response = await handler(request)
        except Dropped:
            drop(request)
            raise asyncio.CancelledError() from None
        except ApiError as exc:
            response = self._error(exc.status, exc.message, exc.headers, phase)
        except web.HTTPException as exc:
            response = self._error(exc.status, exc.reason, None, phase)
        except Exception as exc:  # never crash on garbage: answer 500 in the real shape
            response = self._error(500, f"internal emulator error: {type(exc).__name__}", None, phase)
        self.stats.by_status[response.status] += 1
        if response.status == 429:
            self.stats.refused[phase] += 1
        return response


def _phase(path: str) -> str:
    if path.startswith("/_emulator/pictures/"):
        return "picture"
    if path.startswith("/_emulator/"):
        return "control"
    if path.startswith("/foundationModels/"):
        return "start"
    if path.startswith("/v1/images/"):
        return "images"
    if path.endswith(":cancel"):
        return "cancel"
    if path.startswith("/operations/"):
        return "poll"
    return "token"


