"""What a plan costs of the folder's quota, said as a person reads it (a sweep's and a batch's dry run)."""

from __future__ import annotations

import math


def quota_line(to_send: int, per_minute: int, per_day: int) -> str:
    """How much of the folder's quota a plan takes: minutes of the per-minute quota, share of a day."""
    if to_send == 0:
        return "it takes no quota (nothing to send)"
    minutes = math.ceil(to_send / per_minute)
    share = 100 * to_send / per_day
    shown = f"{share:.0f}" if share >= 10 else f"{share:.2g}"  # 100%, 12%, 0.18% (never 1e+02%)
    return (f"it takes {to_send:,} of the {per_minute:,} generations a minute ({minutes} minute"
            f"{'s' if minutes > 1 else ''} of quota) and {shown}% of the {per_day:,} a day")
