"""Local endpoints a base URL may name instead of a URL (``emulator``), started on demand.

They are found by entry point (group ``yart_jupyter.endpoints``; this package declares its
emulator there), so the HTTP path imports no server code: only a base URL naming one loads it.
"""

from __future__ import annotations

from ..core import errors

#: The entry-point group of local endpoints: each names a callable returning (URL, API key).
GROUP = "yart_jupyter.endpoints"


def start_local(name: str) -> tuple[str, str]:
    """Start (or reuse) the local endpoint ``name``; return its URL and the API key it accepts."""
    from importlib.metadata import entry_points

    found = list(entry_points(group=GROUP, name=name))
    if not found:
        raise errors.ConfigurationError(
            f"No local endpoint named {name!r} is installed (entry-point group {GROUP})",
            hint="Reinstall the package (pip install -e .) or set YANDEXART_BASE_URL to a URL")
    start = found[0].load()
    url, key = start()
    return str(url), str(key)
