"""Keeps secrets out of text: every credential the package handles is registered here.

Messages, reprs and log records pass through :func:`redact`, so a token that a server echoes
back (or that slips into an f-string) is masked before anyone can see it.
"""

from __future__ import annotations

import logging
import threading

_lock = threading.Lock()
_secrets: set[str] = set()

MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it wherever it appears."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def mask(value: str | None) -> str:
    """A recognisable but harmless form of a secret: its first characters only."""
    if not value:
        return "<none>"
    return f"{value[:3]}{MASK}" if len(value) > 12 else MASK


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by a mask."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in every record of the package."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def get_logger(name: str) -> logging.Logger:
    """The package's logger for ``name``, with redaction attached once."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger
