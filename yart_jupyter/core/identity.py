"""Who makes a generation, and where: what a team's store records with each one."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping


def user_name(env: Mapping[str, str] | None = None) -> str:
    """``YANDEXART_USER``, else the login name (``unknown`` when the system cannot tell)."""
    env = os.environ if env is None else env
    given = (env.get("YANDEXART_USER") or "").strip()
    if given:
        return given
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no entry in the password database (a container's odd uid)
        return "unknown"


def host_name() -> str:
    """This machine's name."""
    return socket.gethostname() or "unknown"
