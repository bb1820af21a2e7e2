"""A local emulator of the YandexART REST API, for the demo and the tests.

``embedded()`` starts one in a background thread on a free loopback port, once per process;
that is what the base URL value ``emulator`` means.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

from ..core.errors import ConfigurationError
from .config import DURATION_FORMS, Duration, EmulatorConfig, Fault
from .server import Emulator, Stats

__all__ = ["Duration", "Emulator", "EmulatorConfig", "Fault", "Stats", "embedded", "endpoint", "standalone"]

_embedded: Emulator | None = None
_lock = threading.Lock()


def _env_duration(name: str, default: Duration) -> Duration:
    """A duration from the environment variable ``name``; one line when it cannot be read."""
    spec = os.environ.get(name)
    if not spec:
        return default
    try:
        return Duration.parse(spec)
    except ValueError:
        raise ConfigurationError(f"{name}={spec!r} is not a duration", hint=f"Give {DURATION_FORMS}") from None


def embedded() -> Emulator:
    """The process's embedded emulator, started on first use (generation times from
    YANDEXART_EMULATOR_DURATION, Images API answers from YANDEXART_EMULATOR_IMAGES_DURATION;
    YANDEXART_EMULATOR_DENY lists models to deny; YANDEXART_EMULATOR_PHOTO names a photograph to
    return for JPEGs)."""
    global _embedded
    with _lock:
        if _embedded is None:
            config = EmulatorConfig()
            config.duration = _env_duration("YANDEXART_EMULATOR_DURATION", config.duration)
            config.images_duration = _env_duration("YANDEXART_EMULATOR_IMAGES_DURATION", config.images_duration)
            denied = os.environ.get("YANDEXART_EMULATOR_DENY")
            if denied:
                config.denied_models = {name.strip() for name in denied.split(",") if name.strip()}
            photo = os.environ.get("YANDEXART_EMULATOR_PHOTO")
            if photo:
                try:
                    with open(photo, "rb") as handle:
                        config.photo = handle.read()
                except OSError as exc:
                    raise ConfigurationError(f"YANDEXART_EMULATOR_PHOTO={photo!r} cannot be read: {exc.strerror}",
                                             hint="Name a JPEG photograph, or unset it") from None
            emulator = Emulator(config)
            emulator.start_in_thread()
            atexit.register(emulator.stop_thread)
            _embedded = emulator
        return _embedded


def endpoint() -> tuple[str, str]:
    """The embedded emulator as a local endpoint (``YANDEXART_BASE_URL=emulator``): its URL and API key."""
    emulator = embedded()
    return emulator.url, emulator.config.default_api_key


@contextlib.contextmanager
def standalone(*options: str, niced: bool = False) -> Iterator[str]:
    """Run ``python -m yart_jupyter.emulator`` in another process on a free port; yield its URL.

    ``niced`` lowers its priority, so on a small machine it does not take the CPU from whatever
    it stands in front of (benchmarks): the service it stands for runs on someone else's machine.
    """
    command = [sys.executable, "-m", "yart_jupyter.emulator", "--port", "0", *options]
    if niced:
        command = ["nice", "-n", "19", *command]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=niced) as process:
        if niced:
            _background_group(process.pid)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if " on " not in line:
                raise RuntimeError(f"the emulator did not start: {line!r}")
            yield line.split(" on ")[1].split()[0]
        finally:
            process.terminate()
            process.wait(10)


def _background_group(pid: int) -> None:
    """Give the process's session (its own: ``start_new_session``) the lowest share of the CPU.

    Where Linux groups processes by session for scheduling (``sched_autogroup_enabled``), a nice
    value only ranks a process within its session; a kernel started by jupyter_client is a session
    of its own, so a niced emulator still took half of the CPU from it. A session's group has a
    nice value of its own, which anyone may raise (``/proc/PID/autogroup``). Elsewhere: nothing.
    """
    with contextlib.suppress(OSError), open(f"/proc/{pid}/autogroup", "w") as group:
        group.write("19")
