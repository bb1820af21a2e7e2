"""A local emulator of the YandexART REST API, for the demo and the tests.

``embedded()`` starts one in a background thread on a free loopback port, once per process;
that is what the base URL value ``emulator`` means.
"""

from __future__ import annotations

import atexit
import os
import threading

from .config import Duration, EmulatorConfig, Fault
from .server import Emulator, Stats

__all__ = ["Duration", "Emulator", "EmulatorConfig", "Fault", "Stats", "embedded"]

_embedded: Emulator | None = None
_lock = threading.Lock()


def embedded() -> Emulator:
    """The process's embedded emulator, started on first use (duration from YANDEXART_EMULATOR_DURATION)."""
    global _embedded
    with _lock:
        if _embedded is None:
            config = EmulatorConfig()
            spec = os.environ.get("YANDEXART_EMULATOR_DURATION")
            if spec:
                config.duration = Duration.parse(spec)
            emulator = Emulator(config)
            emulator.start_in_thread()
            atexit.register(emulator.stop_thread)
            _embedded = emulator
        return _embedded
