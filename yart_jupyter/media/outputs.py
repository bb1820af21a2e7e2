"""Where ``--out`` puts files: pattern expansion, checks made before anything is sent, safe saving."""

from __future__ import annotations

import os
import string
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from ..core.errors import RequestValidationError, StorageError
from .image import GeneratedImage, extension_mismatch

_FIELDS = {"seed", "n", "op"}


def check_pattern(pattern: str, count: int, items: Sequence[Mapping[str, str]] = (), option: str = "--out",
                  mime_types: Collection[str] = ()) -> None:
    """Refuse, before any request, a pattern that would overwrite files or cannot be written.

    ``items``: each picture's fields when known before the start (its seed, a sweep's axis values):
    then the pattern must give each picture a name of its own. ``option`` names it in the errors;
    ``mime_types``, the pictures' types when known: an extension that says another is refused.
    """
    if is_folder(pattern):  # every picture under its own name in it (yandexart-SEED.jpg)
        problem = unwritable(Path(pattern).expanduser())
        if problem:
            raise RequestValidationError(option, pattern, f"cannot be written: {problem}")
        return
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None}
    except ValueError as exc:
        raise RequestValidationError(option, pattern, f"is not a valid pattern ({exc})") from None
    for mime_type in sorted(set(mime_types)):
        mismatch = extension_mismatch(pattern, mime_type)
        if mismatch:
            raise RequestValidationError(option, pattern, mismatch)
    known = _FIELDS | {name for item in items for name in item}
    unknown = names - known
    if unknown:
        allowed = ", ".join(f"{{{name}}}" for name in sorted(known))
        raise RequestValidationError(option, pattern, f"may use {allowed} only, not {{{unknown.pop()}}}")
    if count > 1 and not names & {"n", "op"}:
        if not items and "seed" not in names:
            raise RequestValidationError(option, pattern, "names one file for several pictures: add {seed} or {n}")
        seen: dict[tuple[str, ...], Mapping[str, str]] = {}
        for item in items:
            key = tuple(str(item.get(name)) for name in sorted(names))
            if key in seen:
                differ = [name for name in item if item[name] != seen[key].get(name)]
                fix = " or ".join(f"{{{name}}}" for name in [*differ, "n"])
                raise RequestValidationError(option, pattern, f"gives several pictures the same name: add {fix}")
            seen[key] = item
    if not names:
        check_new_file(option, pattern)


def check_new_file(option: str, name: str) -> None:
    """A file that may be written: not there yet (files are never overwritten), in a writable folder."""
    target = Path(name).expanduser()
    if target.is_dir():
        raise RequestValidationError(option, name, "is a folder; give a file name or a pattern like dir/{seed}.jpg")
    if target.exists():
        raise RequestValidationError(option, name, "exists already; choose another name (files are never overwritten)")
    problem = unwritable(target.parent)
    if problem:
        raise RequestValidationError(option, name, f"cannot be written: {problem}")


def unwritable(folder: Path) -> str | None:
    """Why files cannot be made in ``folder`` (created as needed), or None when they can."""
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file, not a folder"
    if not os.access(parent, os.W_OK):
        return f"{parent} is not writable"
    return None


def is_folder(pattern: str) -> bool:
    """Whether ``pattern`` names a folder (it ends with a separator: ``pics/``), to save into under
    generated names, rather than a file (``pics`` is saved as ``pics.jpg``)."""
    return pattern.endswith(("/", os.sep)) and "{" not in pattern


def target_path(pattern: str, image: GeneratedImage, n: int, fields: Mapping[str, str] | None = None) -> Path:
    """The file for one image (in a folder pattern, ``yandexart-SEED``, or its id when it has no seed);
    a taken name gets a ``-2``, ``-3`` ... suffix instead of overwriting."""
    if is_folder(pattern):
        path = Path(pattern).expanduser() / f"yandexart-{image.seed if image.seed is not None else image.operation_id}"
    else:
        path = Path(pattern.format(**{**(fields or {}), "seed": image.seed, "n": n, "op": image.operation_id}))
    path = path.expanduser()
    if path.suffix == "":
        path = path.with_suffix(image.extension)
    candidate, k = path, 1
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
    return candidate


def save_all(pattern: str, images: Sequence[tuple[int, GeneratedImage, Mapping[str, str]]]) -> list[Path]:
    """Save each (n, image, fields) under the pattern; return the paths written (a failure is a
    StorageError). ``n`` is the item's place in its batch, so a file's name does not depend on
    which other items failed."""
    paths = []
    for n, image, fields in images:
        target = target_path(pattern, image, n, fields)
        try:
            paths.append(image.save(target))
        except (OSError, ValueError) as exc:  # ValueError: an extension that says another type
            reason = (exc.strerror or exc) if isinstance(exc, OSError) else extension_mismatch(target, image.mime_type)
            raise StorageError(
                f"Could not save {target}: {reason}", operation_id=image.operation_id,
                hint="The image is still shown and returned; save it with .save(path)",
            ) from None
    return paths
