"""Where ``--out`` puts files: pattern expansion, checks made before anything is sent, safe saving."""

from __future__ import annotations

import os
import string
from pathlib import Path

from .errors import RequestValidationError, StorageError
from .image import GeneratedImage

_FIELDS = {"seed", "n", "op"}


def check_pattern(pattern: str, count: int) -> None:
    """Refuse, before any request, a pattern that would overwrite files or cannot be written."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None}
    except ValueError as exc:
        raise RequestValidationError("--out", pattern, f"is not a valid pattern ({exc})") from None
    unknown = names - _FIELDS
    if unknown:
        raise RequestValidationError(
            "--out", pattern, f"may use {{seed}}, {{n}} and {{op}} only, not {{{unknown.pop()}}}"
        )
    if count > 1 and not names & _FIELDS:
        raise RequestValidationError("--out", pattern, "names one file but the cell makes several: add {seed} or {n}")
    if names:
        return
    target = Path(pattern).expanduser()
    if target.is_dir():
        raise RequestValidationError("--out", pattern, "is a folder; give a file name or a pattern like dir/{seed}.jpg")
    if target.exists():
        raise RequestValidationError(
            "--out", pattern, "exists already; choose another name (files are never overwritten)"
        )
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise RequestValidationError("--out", pattern, f"cannot be written: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise RequestValidationError("--out", pattern, f"cannot be written: {parent} is not writable")


def target_path(pattern: str, image: GeneratedImage, n: int) -> Path:
    """The file for one image; a taken name gets a ``-2``, ``-3`` ... suffix instead of overwriting."""
    path = Path(pattern.format(seed=image.seed, n=n, op=image.operation_id)).expanduser()
    if path.suffix == "":
        path = path.with_suffix(image.extension)
    candidate, k = path, 1
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
    return candidate


def save_all(pattern: str, images: list[GeneratedImage]) -> list[Path]:
    """Save each image under the pattern; return the paths written (a failure is a StorageError)."""
    paths = []
    for n, image in enumerate(images, 1):
        target = target_path(pattern, image, n)
        try:
            paths.append(image.save(target))
        except OSError as exc:
            raise StorageError(
                f"Could not save {target}: {exc.strerror or exc}", operation_id=image.operation_id,
                hint="The image is still shown and returned; save it with .save(path)",
            ) from None
    return paths
