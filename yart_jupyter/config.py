"""Settings of the engine, with their defaults and the environment variables that set them.

Precedence, highest first: explicit arguments (or ``%config YandexArt.*``), then environment
variables, then the defaults here.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError

DEFAULT_BASE_URL = "https://llm.api.cloud.yandex.net"
DEFAULT_IAM_URL = "https://iam.api.cloud.yandex.net/iam/v1/tokens"
EMULATOR = "emulator"
GENERATE_PATH = "/foundationModels/v1/imageGenerationAsync"


@dataclass(frozen=True)
class Settings:
    """Where to talk to and how long to wait; credentials live in :mod:`.credentials`."""

    base_url: str = DEFAULT_BASE_URL
    iam_url: str = DEFAULT_IAM_URL
    folder_id: str | None = None
    request_timeout: float = 60.0
    wait_timeout: float = 3600.0
    data_logging: bool | None = None
    #: The folder's quotas (they change; the defaults are the documented ones).
    generations_per_minute: int = 500
    reads_per_second: int = 50

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the environment, then the non-None ``overrides``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if env.get("YANDEXART_BASE_URL"):
            values["base_url"] = env["YANDEXART_BASE_URL"]
        if env.get("YANDEXART_IAM_URL"):
            values["iam_url"] = env["YANDEXART_IAM_URL"]
        if env.get("YC_FOLDER_ID"):
            values["folder_id"] = env["YC_FOLDER_ID"]
        for name, variable in (("generations_per_minute", "YANDEXART_GENERATIONS_PER_MINUTE"),
                               ("reads_per_second", "YANDEXART_READS_PER_SECOND")):
            if env.get(variable):
                try:
                    values[name] = int(env[variable])
                except ValueError:
                    raise ConfigurationError(f"{variable}={env[variable]!r} is not a whole number") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        if settings.base_url != EMULATOR:
            check_url(settings.base_url, "base URL")
        check_url(settings.iam_url, "IAM token URL")
        return settings


_session_defaults: dict[str, Any] = {}


def set_session_defaults(**values: Any) -> None:
    """Defaults for this process that beat the environment (``%config YandexArt.*`` sets them)."""
    for name, value in values.items():
        if value is None or value == "":
            _session_defaults.pop(name, None)
        else:
            _session_defaults[name] = value


def session_defaults() -> dict[str, Any]:
    """The current process-wide defaults (see :func:`set_session_defaults`)."""
    return dict(_session_defaults)


def check_url(url: str, what: str) -> str:
    """Refuse anything but an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"The {what} {url!r} is not an http(s) URL")
    return url.rstrip("/")


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_secure(url: str) -> None:
    """Credentials go over https, or over plain http only to this machine."""
    if urlsplit(url).scheme != "https" and not is_loopback(url):
        raise ConfigurationError(
            f"Refusing to send credentials over plain http to {urlsplit(url).hostname}; use https"
        )
