"""Making a picture again from its recipe, and saying whether the pixels match: the one rerun under
``%yandexart rerun``, ``yart rerun`` and ``yart_jupyter.rerun()`` (an image file's recipe, a history
entry, a recorded operation)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import errors

if TYPE_CHECKING:
    from ..core.config import Settings
    from ..core.request import GenerationRequest
    from ..media.image import GeneratedImage
    from ..store import Record, Store


class RerunError(errors.YandexArtError, LookupError):
    """What a rerun (or info) was given names nothing it can make again: no such file, entry or
    operation, or one still on its way (a second request would pay for it twice)."""


@dataclass(frozen=True)
class Words:
    """How a face names what its errors send the reader to."""

    history: str
    resume: str  #: with ``{op}``
    on_its_way: str


MAGIC = Words("%yandexart history", "%yandexart resume {op}",
              "%yandexart jobs shows what runs in this kernel, %yandexart pending what an earlier one left")
CLI = Words("yart history", "yart resume {op}", "yart pending lists it, yart resume --all collects it")
PYTHON = Words("yart_jupyter.history()", "await yart_jupyter.resume('{op}')",
               "its job (submit) or yart_jupyter.resume collects it")


@dataclass(frozen=True)
class Origin:
    """What a rerun starts from: the recipe, the picture to compare with (None when there is none:
    the generation failed, or its picture was pruned) and why there is none."""

    recipe: dict[str, Any]
    before: bytes | None
    missing: str = ""

    @property
    def operation_id(self) -> str:
        return str(self.recipe.get("operation_id") or "the picture")


@dataclass(frozen=True)
class Rerun:
    """A picture made again: the new picture, whether its pixels match the old ones (None: there was
    nothing to compare with) and the line that says so (the repr)."""

    image: GeneratedImage
    same: bool | None
    verdict: str

    def __repr__(self) -> str:
        return self.verdict

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """In a notebook: the new picture as a cell shows it, the verdict above it."""
        import html

        bundle, metadata = self.image._repr_mimebundle_(include, exclude)
        verdict = f'<div class="yart-rerun" style="font:12px monospace">{html.escape(self.verdict)}</div>'
        return {**bundle, "text/html": verdict + str(bundle.get("text/html", "")),
                "text/plain": f"{self.verdict}\n{bundle.get('text/plain', '')}"}, metadata


def find_stored(store: Store, reference: str, doing: str, words: Words) -> Record | None:
    """The generation ``reference`` names in the store (``#N``, ``N``, an operation id), or None when it
    names none; a history shorter than ``#N`` is an error that says where the numbers are
    (``doing``: the command, ``%yandexart rerun``, ``yart info``)."""
    try:
        return store.entry(reference) or store.get(reference)
    except LookupError as exc:
        raise RerunError(f"{doing}: {exc}; {words.history} lists them") from None


def recipe_of(record: Record) -> tuple[dict[str, Any], bytes | None]:
    """A stored generation's recipe, as a file of it carries, and its picture (None when it made none
    or the picture was pruned: the recipe is then the store's record of the request)."""
    from ..core.provenance import recipe

    if record.status == "done" and record.image_path is not None and record.image_path.exists():
        image = record.to_image()
        return image.recipe(), image.image_bytes
    return recipe(record), None


def without_picture(record: Record, reference: str) -> str:
    """Why a stored generation has no picture, and what its recipe's cell would do: the line ``info``
    says above the recipe."""
    from ..present.records import state

    if record.status in ("pending", "queued", "submitting"):
        return (f"{reference}: {record.status}, still on its way: collect it rather than run the cell below, "
                "which would make (and pay for) another.")
    return f"{reference}: {'done; its picture was pruned' if record.status == 'done' else state(record)}. " \
        "The cell below makes it."


def find_origin(store: Store, source: str, doing: str, words: Words) -> Origin:
    """The recipe ``source`` names: an image file, ``#N`` (a history entry) or an operation id.
    ``doing`` (``%yandexart rerun``, ``yart rerun``) and ``words`` name the face in the errors, which
    say what to do instead. A generation still on its way is refused: a second request would pay
    for it twice."""
    from ..core.provenance import info
    from ..present.records import state

    path = Path(source).expanduser()
    if path.exists():
        found = info(path)
        if isinstance(found, list):
            raise RerunError(f"{doing}: give one image file, not a notebook")
        return Origin(found, path.read_bytes())
    record = find_stored(store, source, doing, words)
    if record is None or record.request() is None:
        raise RerunError(f"{doing}: {source!r} is neither a file, a history entry (#N) nor an operation in the store")
    if record.status == "pending":
        raise RerunError(f"{doing}: {source} is still running on the server: "
                         f"{words.resume.format(op=record.operation_id)} collects it")
    if record.status in ("queued", "submitting"):
        raise RerunError(f"{doing}: {source} is on its way ({record.status}): {words.on_its_way}")
    recipe, picture = recipe_of(record)
    if picture is not None:
        return Origin(recipe, picture)
    if record.status == "done":
        return Origin(recipe, None, "its picture was pruned")
    return Origin(recipe, None, f"it {state(record)}")


def request_of(settings: Settings, recipe: dict[str, Any]) -> GenerationRequest:
    """The request that makes the recipe's picture again, on the same model in the reader's folder
    (a colleague's ``art://their-folder/...`` is not one the reader can use)."""
    from ..core.models import portable_name
    from ..core.request import Message

    return settings.request(
        [Message(m["text"], m.get("weight", 1.0)) for m in recipe["messages"]], seed=recipe["seed"],
        aspect=recipe["aspect"], mime_type=recipe.get("mime_type"),
        model_uri=portable_name(recipe["model_uri"]) if recipe.get("model_uri") else None,
    )


def judged(origin: Origin, image: GeneratedImage) -> Rerun:
    """The rerun's outcome: whether the new pixels match the old ones (None: nothing to compare
    with) and the line that says so. Decodes both pictures: a face calls it off the event loop."""
    from ..media.pixels import same_pixels

    same = same_pixels(origin.before, image.image_bytes) if origin.before is not None else None
    return Rerun(image, same, verdict(origin, image, bool(same)))


def verdict(origin: Origin, image: GeneratedImage, same: bool) -> str:
    """One line on the rerun: whether the new pixels match the old, or why they cannot be compared."""
    if origin.before is None:  # a generation that made no picture, made now: nothing to compare
        return f"Rerun of {origin.operation_id}: made now; nothing to compare with ({origin.missing})."
    if image.cached:
        text = "answered from the local store (no API call); --no-cache (in Python cache=False) makes it again"
    elif origin.recipe.get("seed") is None:
        text = ("a new picture: the model takes no seed, so no request makes the same picture again "
                "(the old one stays in the store)")
    else:
        text = f"the new pixels {'are identical to' if same else 'differ from'} the old ones"
        old, new = origin.recipe.get("model_version"), image.model_version
        if old and new and old != new:
            text += (f"; model version {old} then, {new} now: the same seed on another model version is "
                     "another picture")
    return f"Rerun of {origin.operation_id}: {text}."
