"""Which known name a mistyped word most likely meant, for every face's "did you mean" (one cutoff)."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches

#: How close a word must be to a name to be taken for its typo (difflib's ratio): ``histroy`` is
#: ``history``, ``cancer`` is ``cancel`` (the caller decides whether the rest reads as a prompt).
CUTOFF = 0.75


def closest(word: str, names: Iterable[str]) -> str | None:
    """The name ``word`` most likely misspells, or None when none is that close."""
    near = get_close_matches(word, sorted(names), n=1, cutoff=CUTOFF)
    return near[0] if near else None


def closest_name(name: str, namespace: Iterable[str]) -> str | None:
    """The notebook name (or sweep axis) a mistyped ``{name}`` most likely means; private names
    (IPython's ``_``, ``_i3`` ...) are never meant."""
    return closest(name, [known for known in namespace if not known.startswith("_")])


def unknown_option_hint(message: str, names: Iterable[str]) -> str:
    """For argparse's "unrecognized arguments: --sead 3", the option most likely meant:
    `` (did you mean --seed?)``, or nothing."""
    known = sorted(names)
    unknown = message.partition("unrecognized arguments:")[2].split()
    for word in (w.partition("=")[0] for w in unknown if w.startswith("-")):
        near = closest(word, known)
        if near:
            return f" (did you mean {near}?)"
    return ""
