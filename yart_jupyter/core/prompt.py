"""The ``%%yandexart`` cell body and seed lists: parsing and variable expansion.

A body is one message per block; a line ``---`` starts another message and ``--- 0.3`` one
with weight 0.3 (the body may begin with such a line to weight the first). Lines of a block are
joined with single spaces. ``{name}`` expands notebook variables (``{{``/``}}`` are braces).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import RequestValidationError
from .request import MAX_SEED, validate_weight
from .typos import closest_name

_SEPARATOR = re.compile(r"^\s*---(?:\s+(\S+))?\s*$")


def parse_body(body: str) -> list[tuple[str, float]]:
    """Split a cell body into (text, weight) messages; texts are not validated yet."""
    messages: list[tuple[list[str], float]] = []
    current: list[str] = []
    weight = 1.0
    started = False
    for line in body.splitlines():
        match = _SEPARATOR.match(line)
        if match:
            if started or current:
                messages.append((current, weight))
            current = []
            weight = validate_weight(match.group(1)) if match.group(1) is not None else 1.0
            started = True
            continue
        if line.strip():
            current.append(line.strip())
            started = True
    if current or started:
        messages.append((current, weight))
    result = []
    for index, (lines, w) in enumerate(messages, 1):
        text = " ".join(lines)
        if not text:
            raise RequestValidationError(
                "prompt", body.strip()[:60], f"message {index} is empty (nothing between '---' lines)"
            )
        result.append((text, w))
    if not result:
        raise RequestValidationError("prompt", body, "the cell body is the prompt; it is empty")
    return result


def expand(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{expression}`` with its value in ``namespace`` (IPython's rules, without ``$``)."""
    from IPython.utils.text import FullEvalFormatter

    try:
        return str(FullEvalFormatter().format(text, **namespace))
    except NameError as exc:
        near = closest_name(getattr(exc, "name", None) or "", namespace)
        meant = f" (did you mean {{{near}}}?)" if near else ""
        raise RequestValidationError(
            "prompt", text, f"{exc}{meant}; define it, write {{{{ }}}} for literal braces, or use --raw"
        ) from None
    except (SyntaxError, ValueError, AttributeError, KeyError, IndexError, TypeError) as exc:
        raise RequestValidationError(
            "prompt", text, f"cannot expand a {{...}} part ({type(exc).__name__}: {exc}); "
            "write {{ }} for literal braces or use --raw"
        ) from None


def _too_many(count: int, limit: int) -> str:
    """Why a cell's seeds are refused: their count, the limit and how to raise it (a typo in a range
    must not spend the quota)."""
    return (f"{count} seeds; at most {limit} images at once (the max_images setting: %config YandexArt.max_images = N, "
            "YANDEXART_MAX_IMAGES)")


def parse_seeds(tokens: list[str], limit: int) -> list[int]:
    """``["1", "5-8"]`` → ``[1, 5, 6, 7, 8]``; at most ``limit`` seeds, duplicates dropped."""
    seeds: list[int] = []
    for token in tokens:
        for part in token.split(","):
            part = part.strip()
            if not part:
                continue
            match = re.fullmatch(r"(\d+)-(\d+)", part)
            if match:
                low, high = int(match.group(1)), int(match.group(2))
                if high < low:
                    raise RequestValidationError("seed", part,
                                                 f"the range runs backwards: write it LOW-HIGH ({high}-{low})")
                if high > MAX_SEED:
                    raise RequestValidationError("seed", part, f"a range is LOW-HIGH within 0..{MAX_SEED}")
                if high - low + 1 > limit:
                    raise RequestValidationError("seed", part, _too_many(high - low + 1, limit))
                seeds.extend(range(low, high + 1))
            elif re.fullmatch(r"\d+", part):
                value = int(part)
                if value > MAX_SEED:
                    raise RequestValidationError("seed", part, f"must be from 0 to {MAX_SEED} (2^63-1)")
                seeds.append(value)
            elif re.fullmatch(r"\{\w+\}", part):  # a {name} the line's expansion found nothing for
                raise RequestValidationError("seed", part, f"{part} names no notebook variable (define it first)")
            else:
                listed = ",".join(re.split(r"[|;\s]+", part)) if re.fullmatch(r"\d+([|;\s]+\d+)+", part) else ""
                raise RequestValidationError(
                    "seed", part, f"must be a whole number from 0 to {MAX_SEED} or a range A-B"
                    + (f"; separate seeds with commas (--seed {listed})" if listed else "")
                )
    unique = list(dict.fromkeys(seeds))
    if len(unique) > limit:
        raise RequestValidationError("seed", " ".join(tokens), _too_many(len(unique), limit))
    return unique
