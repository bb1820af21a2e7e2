"""The result of a generation: bytes plus everything needed to reproduce and cite it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.identity import user_name
from ..core.request import AspectRatio, Message
from .pixels import image_size, preview
from .worker import WORKER

_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png"}
#: The picture type a file name's extension says, for the extensions that say one.
_TYPES_OF = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


def extension_mismatch(name: str | os.PathLike[str], mime_type: str) -> str | None:
    """Why a file called ``name`` would mislabel a picture of ``mime_type`` (a ``.png`` holding the
    service's JPEG bytes, which are written unchanged), or None when its extension says nothing else."""
    suffix = Path(name).suffix
    said = _TYPES_OF.get(suffix.lower())
    if said is None or said == mime_type:
        return None
    return (f"ends in {suffix} but the picture is {mime_type}: name it {_EXTENSIONS.get(mime_type, '')}, or ask "
            f"for {said} (--mime {said}; mime_type= in code)")


def write_atomic(target: Path, data: bytes) -> None:
    """Write through a temporary file and a rename, so a crash never leaves half a picture."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def on_loop_thread() -> bool:
    """True where an event loop runs: that thread encodes a picture at once rather than wait on a
    pipe; other threads (a worker thread, a plain script) have the helper process do it (see
    :mod:`.worker`)."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@dataclass
class GeneratedImage:
    """A generated picture with its request, operation id and timings; displays itself in Jupyter."""

    image_bytes: bytes = field(repr=False)
    mime_type: str
    seed: int | None
    aspect: AspectRatio | None
    messages: tuple[Message, ...]
    operation_id: str
    model_version: str | None = None
    model_uri: str | None = None
    submitted_at: datetime | None = None
    done_at: datetime | None = None
    cached: bool = False
    #: The file in the local store, once recorded there.
    path: Path | None = field(default=None, repr=False)
    #: The prompt the service says it drew, when it rewrote ours (the Images API may).
    revised_prompt: str | None = None
    #: Who made it, for a picture read from the store (a teammate's, in a team store).
    made_by: str | None = None
    #: Files written by ``--out`` or :meth:`save` (the notebook's previews link to the first).
    saved: list[Path] = field(default_factory=list, repr=False)
    _previews: dict[int, tuple[bytes, str, tuple[int, int]]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def made_by_other(self) -> bool:
        """A picture a teammate paid for (read from a team's store, made by someone else)."""
        return self.made_by is not None and self.made_by != user_name()

    @property
    def duration(self) -> float | None:
        """Seconds from submission to the moment we had the image."""
        if self.submitted_at and self.done_at:
            return (self.done_at - self.submitted_at).total_seconds()
        return None

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) in pixels."""
        return image_size(self.image_bytes)

    @property
    def prompt(self) -> str:
        return " | ".join(m.text for m in self.messages)

    @property
    def extension(self) -> str:
        return _EXTENSIONS.get(self.mime_type, ".img")

    def preview(self, longest: int) -> tuple[bytes, str, tuple[int, int]]:
        """The picture as a cell output embeds it at ``longest`` pixels (see :func:`preview`); kept,
        so showing it again costs nothing. ``image_bytes`` stays the service's exact bytes."""
        if longest not in self._previews:
            encoded = None if on_loop_thread() else WORKER.preview(self.image_bytes, longest)
            if encoded is not None and encoded[0] == self.image_bytes:  # the original was smaller: keep it, once
                encoded = (self.image_bytes, *encoded[1:])
            self._previews[longest] = encoded or preview(self.image_bytes, longest)
        return self._previews[longest]

    def recipe(self) -> dict[str, Any]:
        """How this picture was made: everything :func:`yart_jupyter.info` reads back from its files."""
        from ..core.provenance import recipe

        return recipe(self)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the image to ``path`` with its recipe embedded (a folder gets a generated name); the
        service's compressed picture is written unchanged. Never overwrites unless asked."""
        target = Path(path).expanduser()
        if target.is_dir():
            target = target / f"yandexart-{self.seed if self.seed is not None else self.operation_id}{self.extension}"
        if target.suffix == "":
            target = target.with_suffix(self.extension)
        mismatch = extension_mismatch(target, self.mime_type)
        if mismatch:
            raise ValueError(f"{target} {mismatch}")
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        from ..core.provenance import embed

        write_atomic(target, embed(self.image_bytes, self.recipe()))
        self.saved.append(target)
        return target

    @property
    def prompt_line(self) -> str:
        """The prompt as shown under the picture, with the service's rewrite of it when it sent one."""
        if self.revised_prompt and self.revised_prompt != self.prompt:
            return f"{self.prompt} (the service drew: {self.revised_prompt})"
        return self.prompt

    def caption(self) -> str:
        """One short line: seed, aspect, pixel size, duration, operation id."""
        parts = []
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        elif self.operation_id.startswith("img-"):
            parts.append("no seed")
        if self.aspect is not None:
            parts.append(f"aspect {self.aspect}")
        size = self.size
        if size:
            parts.append(f"{size[0]}×{size[1]}")
        if self.cached:
            parts.append(f"cached from {self.made_by} (no API call)" if self.made_by_other else "cached (no API call)")
        elif self.duration is not None:
            parts.append(f"{self.duration:.1f} s")
        parts.append(f"op {self.operation_id}")
        return " · ".join(parts)

    def __repr__(self) -> str:
        return (
            f"GeneratedImage(seed={self.seed}, aspect={str(self.aspect) if self.aspect else None!r}, "
            f"size={self.size}, mime_type={self.mime_type!r}, operation_id={self.operation_id!r}, "
            f"bytes={len(self.image_bytes)}, prompt={self.prompt[:40]!r})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The picture (as ``%config YandexArt.inline`` says) with its caption, and the recipe."""
        from ..core.settings import current
        from ..present.pictures import images_output

        return images_output([self], inline=current().inline)


class ImageSet(list[GeneratedImage]):
    """Several results of one cell: a list that displays as a grid with captions."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        from ..core.settings import current
        from ..present.pictures import images_output

        return images_output(self, inline=current().inline)

    def save(self, folder: str | os.PathLike[str], *, overwrite: bool = False) -> list[Path]:
        """Save every image into ``folder`` with generated names."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        return [image.save(folder, overwrite=overwrite) for image in self]
