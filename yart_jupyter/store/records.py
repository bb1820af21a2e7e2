"""What the store keeps of a generation and of a sweep, and the key that finds a request again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

from ..core.errors import StorageError
from ..core.request import AspectRatio, GenerationRequest, Message
from ..media.image import GeneratedImage

#: A generation's life: ``queued`` (asked for, not sent), ``submitting`` (its start request is
#: out, answer unknown), ``pending`` (the service has it: an operation id), then an end state.
State = Literal["queued", "submitting", "pending", "done", "failed", "cancelled", "expired"]
STATUSES: tuple[State, ...] = get_args(State)
UNSENT: tuple[State, ...] = ("queued", "submitting")
#: The placeholder id of a generation whose operation id is not known yet.
INTENT_PREFIX = "intent:"


def request_key(request: GenerationRequest) -> str:
    """What makes two requests the same picture: messages, seed, aspect, mime type and model."""
    canonical = json.dumps(
        [[[m.text, m.weight] for m in request.messages], request.seed, str(request.aspect),
         request.mime_type, request.model_uri],
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Record:
    """One generation as the store knows it."""

    operation_id: str
    status: State
    prompt: str
    messages: tuple[Message, ...]
    seed: int | None
    seed_given: bool
    aspect: str | None
    mime_type: str | None
    model_uri: str | None
    submitted_at: datetime
    finished_at: datetime | None
    error: str | None
    model_version: str | None
    image_path: Path | None
    width: int | None
    height: int | None
    bytes: int | None
    notebook: str | None
    idempotency_key: str | None = None
    #: The API that served it: "operations" (an operation id to collect) or "images" (synchronous).
    api: str = "operations"
    revised_prompt: str | None = None
    #: Who made it (``YANDEXART_USER`` or the login) and on which machine; None in records from
    #: before the team store.
    owner: str | None = None
    host: str | None = None

    @property
    def answer_lost(self) -> bool:
        """A synchronous request that went out and whose answer never came: nothing to collect."""
        return self.api == "images" and self.status == "submitting"

    @property
    def done_at(self) -> datetime | None:
        """When it finished (as a picture's ``done_at``: what a recipe records)."""
        return self.finished_at

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.submitted_at).total_seconds()

    def request(self) -> GenerationRequest | None:
        """The request as it was sent (None for an operation the store only knows by id)."""
        if (self.seed is None and self.api != "images") or not self.messages:
            return None
        return GenerationRequest(
            self.messages, self.seed, AspectRatio.parse(self.aspect or "1:1"),
            self.mime_type or "image/jpeg", self.model_uri or "", self.seed_given,
            "images" if self.api == "images" else "operations",
        )

    def to_image(self, *, cached: bool = False) -> GeneratedImage:
        """The stored picture as a GeneratedImage (read from its file)."""
        if self.image_path is None or not self.image_path.exists():
            raise StorageError(f"The image of {self.operation_id} is not in the store", operation_id=self.operation_id)
        return GeneratedImage(
            image_bytes=self.image_path.read_bytes(), mime_type=self.mime_type or "image/jpeg", seed=self.seed,
            aspect=AspectRatio.parse(self.aspect) if self.aspect else None, messages=self.messages,
            operation_id=self.operation_id, model_version=self.model_version, model_uri=self.model_uri,
            submitted_at=self.submitted_at, done_at=self.finished_at, cached=cached, path=self.image_path,
            revised_prompt=self.revised_prompt, made_by=self.owner,
        )


@dataclass(frozen=True)
class ExperimentRecord:
    """A sweep as the store keeps it: its axes, and each cell's axis values and generation.

    ``items``: (axis values, reference) per cell, where the reference is the generation's
    idempotency key (it names the record from before its start) or, for a picture the store
    already had, its operation id.
    """

    id: str
    created_at: datetime
    title: str
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    items: tuple[tuple[tuple[Any, ...], str], ...]
    notebook: str | None


class History(list[Record]):
    """Records, newest first, that show themselves in a notebook as ``%yandexart history`` does (a
    gallery of thumbnails, numbered as ``compare`` and ``rerun`` take them: ``numbers``, by operation
    id) and print one line each."""

    def __init__(self, records: Iterable[Record] = (), thumbnail: Callable[[Record], bytes | None] | None = None,
                 numbers: Mapping[str, int] | None = None):
        super().__init__(records)
        self._thumbnail = thumbnail
        self._numbers = dict(numbers or {})

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from ..present.records import history_bundle

        if not self:
            return {"text/plain": "no generations"}
        return history_bundle(self, [self._thumbnail(r) if self._thumbnail else None for r in self], self._numbers)

    def __repr__(self) -> str:
        from ..present.records import history_bundle

        return history_bundle(self, [None] * len(self), self._numbers)["text/plain"] if self else "no generations"
