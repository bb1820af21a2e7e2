"""Amounts as people write them on a command line: days (``12h``, ``30d``, ``2w``) and megabytes
(``500MB``, ``2GB``); a number alone is days or megabytes."""

from __future__ import annotations

import re

_DAYS = {"": 1.0, "d": 1.0, "day": 1.0, "days": 1.0, "h": 1 / 24, "hour": 1 / 24, "hours": 1 / 24,
         "w": 7.0, "week": 7.0, "weeks": 7.0}
_MEGABYTES = {"": 1.0, "mb": 1.0, "m": 1.0, "gb": 1024.0, "g": 1024.0, "kb": 1 / 1024, "k": 1 / 1024}


def days(text: str) -> float:
    """``--older-than``'s value as days: ``30``, ``30d``, ``12h`` or ``2w`` (a ValueError otherwise:
    argparse says "invalid days value")."""
    return _with_unit(text, _DAYS)


def megabytes(text: str) -> float:
    """``--max-size``'s value as megabytes: ``500``, ``500MB`` or ``2GB``."""
    return _with_unit(text, _MEGABYTES)


def _with_unit(text: str, units: dict[str, float]) -> float:
    """A number and an optional unit of ``units`` (each the factor to the default unit)."""
    match = re.fullmatch(r"\s*(-?[\d.]+)\s*([a-z]*)\s*", text.lower())
    if match is None or match.group(2) not in units:
        raise ValueError(text)
    return float(match.group(1)) * units[match.group(2)]
