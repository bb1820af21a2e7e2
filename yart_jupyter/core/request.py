"""Generation requests: parsing and validation, done before anything is sent.

Every face of the package (Python API, magic, form) builds its request here, so a bad value
gets the same one-line error everywhere and never reaches the server.
"""

from __future__ import annotations

import math
import re
import secrets
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import RequestValidationError
from .models import Api, ModelSpec, combine, resolve, spec_for_uri

MAX_TEXT = 500
MAX_SEED = 2**63 - 1
MAX_RATIO_SIDE = 1000
MAX_ELONGATION = 4
MIME_TYPES = {"image/jpeg": "image/jpeg", "jpeg": "image/jpeg", "jpg": "image/jpeg",
              "image/png": "image/png", "png": "image/png"}
DEFAULT_MIME = "image/jpeg"

#: Named aspect ratios accepted wherever a ratio is.
ASPECT_PRESETS: dict[str, tuple[int, int]] = {
    "square": (1, 1),
    "wide": (16, 9),
    "tall": (9, 16),
    "landscape": (3, 2),
    "portrait": (2, 3),
    "banner": (2, 1),
    "skyscraper": (1, 2),
    "ultrawide": (21, 9),
    "photo": (4, 3),
}

_ALLOWED_CONTROLS = {"\t", "\n", "\r"}


@dataclass(frozen=True)
class Message:
    """One weighted text of a request; several messages blend by their weights."""

    text: str
    weight: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "weight": _format_weight(self.weight)}


def _as_ratio(*given: Any) -> str:
    """What a ratio written another way most likely means: pixels (``1920x1080``: the service picks
    the pixels itself, about a megapixel) or a decimal (``1.5``); nothing when it means no ratio."""
    from fractions import Fraction
    from math import gcd

    try:
        if len(given) == 2:
            w, h = int(given[0]), int(given[1])
            if w < 1 or h < 1:
                return ""
            w, h = w // gcd(w, h), h // gcd(w, h)
        else:
            ratio = Fraction(str(given[0])).limit_denominator(MAX_RATIO_SIDE)
            w, h = ratio.numerator, ratio.denominator
    except (ValueError, ZeroDivisionError):
        return ""
    if not (0 < w <= MAX_RATIO_SIDE and 0 < h <= MAX_RATIO_SIDE) or max(w, h) > MAX_ELONGATION * min(w, h):
        return ""  # no ratio the service takes either
    if len(given) == 2:
        return f" (the service takes a ratio, not pixels: {given[0]}x{given[1]} is {w}:{h})"
    return f" ({given[0]} is {w}:{h})"


@dataclass(frozen=True)
class AspectRatio:
    """Width to height as small positive integers, written ``W:H``."""

    width: int = 1
    height: int = 1

    def __str__(self) -> str:
        return f"{self.width}:{self.height}"

    @classmethod
    def parse(cls, value: AspectRatioLike | None) -> AspectRatio:
        """Accept ``"16:9"``, ``"16x9"``, a preset name, a ``(w, h)`` pair or an AspectRatio."""
        if value is None:
            return cls()
        if isinstance(value, AspectRatio):
            w, h = value.width, value.height
        elif isinstance(value, str):
            text = value.strip().lower()
            if text in ASPECT_PRESETS:
                w, h = ASPECT_PRESETS[text]
            else:
                match = re.fullmatch(r"(\d+)\s*[:x×/]\s*(\d+)", text)
                if not match:
                    names = ", ".join(ASPECT_PRESETS)
                    raise RequestValidationError(
                        "aspect", value, f"write it as W:H with positive integers, or one of {names}{_as_ratio(text)}"
                    )
                w, h = int(match.group(1)), int(match.group(2))
        elif isinstance(value, tuple) and len(value) == 2:
            w, h = value
        else:
            raise RequestValidationError("aspect", value, "write it as W:H, e.g. 16:9")
        for side in (w, h):
            if isinstance(side, bool) or not isinstance(side, int):
                raise RequestValidationError("aspect", value, "sides must be whole numbers")
            if not 1 <= side <= MAX_RATIO_SIDE:
                raise RequestValidationError(
                    "aspect", value, f"each side must be from 1 to {MAX_RATIO_SIDE}{_as_ratio(w, h)}"
                )
        if max(w, h) > MAX_ELONGATION * min(w, h):
            raise RequestValidationError(
                "aspect", value,
                f"the ratio must lie between 1:{MAX_ELONGATION} and {MAX_ELONGATION}:1",
            )
        return cls(w, h)

    def pixel_size(self, area: int = 1024 * 1024) -> tuple[int, int]:
        """The picture size the service returns for this ratio: about ``area`` pixels, in steps of 8."""
        ratio = self.width / self.height
        width = math.sqrt(area * ratio)
        height = width / ratio
        return max(8, round(width / 8) * 8), max(8, round(height / 8) * 8)


AspectRatioLike = str | tuple[int, int] | AspectRatio
PromptLike = str | Message | tuple[str, float] | Sequence[str | Message | tuple[str, float]]


@dataclass(frozen=True)
class GenerationRequest:
    """A validated request, ready to send: what the server is asked for, nothing more."""

    messages: tuple[Message, ...]
    #: None on a model without seeds (every request is a new picture): no seed is sent or shown.
    seed: int | None
    aspect: AspectRatio = field(default_factory=AspectRatio)
    mime_type: str = DEFAULT_MIME
    model_uri: str = ""
    seed_was_given: bool = True
    api: Api = "operations"

    @property
    def model(self) -> ModelSpec:
        """The catalogue entry of this request's model."""
        return spec_for_uri(self.model_uri, self.api)

    @property
    def reproducible(self) -> bool:
        """True when the same request gives the same picture again (a seed was chosen and sent)."""
        return self.seed is not None and self.seed_was_given

    @property
    def sent_prompt(self) -> str:
        """The one prompt a single-prompt model is sent (several messages combined, see :func:`combine`)."""
        return combine([m.text for m in self.messages])

    @property
    def weighted(self) -> bool:
        """True when a message carries a weight other than 1 (which the service documents as unsupported)."""
        return any(m.weight != 1 for m in self.messages)

    @property
    def prompt(self) -> str:
        """The messages as one line of text, for captions and logs."""
        if len(self.messages) == 1:
            return self.messages[0].text
        return " | ".join(f"{m.text} ({_format_weight(m.weight)})" for m in self.messages)

    def to_json(self) -> dict[str, Any]:
        """The request body: the Images API's ``{model, prompt, size}``, or the asynchronous API's
        protobuf JSON mapping."""
        if self.api == "images":
            return {"model": self.model_uri, "prompt": self.sent_prompt,
                    "size": f"{self.aspect.width}x{self.aspect.height}"}
        return {
            "modelUri": self.model_uri,
            "generationOptions": {
                "mimeType": self.mime_type,
                **({"seed": str(self.seed)} if self.seed is not None else {}),
                "aspectRatio": {
                    "widthRatio": str(self.aspect.width),
                    "heightRatio": str(self.aspect.height),
                },
            },
            "messages": [m.to_json() for m in self.messages],
        }


#: Random seeds are drawn from 1 to this: at most six digits, short to read, say and type again
#: (any seed up to MAX_SEED can still be given; a random one only has to differ from the others).
RANDOM_SEEDS = 999_999


def random_seed(avoid: Collection[int] = ()) -> int:
    """A fresh random seed of at most six digits (never 0, which asks the server to choose), not in ``avoid``."""
    while True:
        seed = secrets.randbelow(RANDOM_SEEDS) + 1
        if seed not in avoid:
            return seed


def validate_text(text: Any, field_name: str = "prompt") -> str:
    """Trim a message text and check it against the service's limits."""
    if not isinstance(text, str):
        raise RequestValidationError(field_name, text, "must be text")
    trimmed = text.strip()
    if not trimmed:
        raise RequestValidationError(field_name, text, f"must have 1 to {MAX_TEXT} characters; it is empty")
    for ch in trimmed:
        if ch not in _ALLOWED_CONTROLS and unicodedata.category(ch) in ("Cc", "Cs"):
            raise RequestValidationError(
                field_name, trimmed, f"contains the control character U+{ord(ch):04X}"
            )
    if len(trimmed) > MAX_TEXT:
        raise RequestValidationError(
            field_name, trimmed, f"must have at most {MAX_TEXT} characters; it has {len(trimmed)}"
        )
    return trimmed


def validate_weight(weight: Any) -> float:
    """A message weight: a finite number above zero."""
    if isinstance(weight, bool):
        raise RequestValidationError("weight", weight, "must be a number above 0")
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise RequestValidationError("weight", weight, "must be a number above 0") from None
    if not math.isfinite(value) or value <= 0:
        raise RequestValidationError(
            "weight", weight, "must be a finite number above 0 (negative prompts are not supported)"
        )
    return value


def validate_seed(seed: Any) -> int:
    """A seed in 0..2^63-1; strings of digits are accepted."""
    if isinstance(seed, bool):
        raise RequestValidationError("seed", seed, f"must be a whole number from 0 to {MAX_SEED}")
    if isinstance(seed, str):
        text = seed.strip().replace("_", "")
        if not re.fullmatch(r"-?\d+", text):
            raise RequestValidationError("seed", seed, f"must be a whole number from 0 to {MAX_SEED}")
        seed = int(text)
    if isinstance(seed, (list, tuple, range, set)):
        raise RequestValidationError("seed", seed, "one seed makes one picture; for several, a generate() each, or "
                                     "batch() with a seed column")
    if not isinstance(seed, int):
        raise RequestValidationError("seed", seed, f"must be a whole number from 0 to {MAX_SEED}")
    if not 0 <= seed <= MAX_SEED:
        raise RequestValidationError("seed", seed, f"must be from 0 to {MAX_SEED} (2^63-1)")
    return seed


def validate_mime(mime_type: Any) -> str:
    """``image/jpeg`` (the service's documented type) or ``image/png``."""
    if isinstance(mime_type, str) and mime_type.strip().lower() in MIME_TYPES:
        return MIME_TYPES[mime_type.strip().lower()]
    raise RequestValidationError("mime_type", mime_type, "must be image/jpeg or image/png")


def default_model_uri(folder_id: str) -> str:
    """The model URI of the latest YandexART in ``folder_id``."""
    return f"art://{folder_id}/yandex-art/latest"


def validate_model_uri(model_uri: Any) -> str:
    """A model URI of the form ``art://<folder>/<model>[/<version>]``."""
    if not isinstance(model_uri, str) or not re.fullmatch(r"art://[^/\s]+(/[^/\s]+){0,2}", model_uri.strip()):
        raise RequestValidationError(
            "model_uri", model_uri, "must look like art://<folder>/yandex-art/latest"
        )
    return model_uri.strip()


def validate_folder_id(folder_id: Any) -> str:
    """A folder id: letters, digits, dashes and underscores."""
    if not isinstance(folder_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", folder_id.strip()):
        raise RequestValidationError(
            "folder_id", folder_id, "must be a Yandex Cloud folder id (letters and digits)"
        )
    return folder_id.strip()


def validate_timeout(timeout: Any, field_name: str = "timeout") -> float | None:
    """A wait's limit in seconds: None (the setting's), or a positive number; refused before anything
    is sent (a zero or negative limit would start a generation and give up on it at once)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise RequestValidationError(field_name, timeout, "must be a positive number of seconds")
    return float(timeout)


def normalize_messages(prompt: PromptLike) -> tuple[Message, ...]:
    """Turn the accepted prompt forms into validated messages."""
    items: Iterable[Any]
    if isinstance(prompt, (str, Message)) or (
        isinstance(prompt, tuple) and len(prompt) == 2 and isinstance(prompt[0], str)
        and not isinstance(prompt[1], str)
    ):
        items = [prompt]
    elif isinstance(prompt, Sequence):
        items = list(prompt)
    else:
        raise RequestValidationError("prompt", prompt, "must be text, a Message, or a list of them")
    messages = []
    for item in items:
        if isinstance(item, Message):
            text, weight = item.text, item.weight
        elif isinstance(item, tuple) and len(item) == 2:
            text, weight = item
        else:
            text, weight = item, 1.0
        messages.append(Message(validate_text(text), validate_weight(weight)))
    if not messages:
        raise RequestValidationError("prompt", prompt, "needs at least one message")
    return tuple(messages)


def build_request(
    prompt: PromptLike,
    *,
    seed: int | str | None = None,
    aspect: AspectRatioLike | None = None,
    mime_type: str = DEFAULT_MIME,
    model_uri: str | None = None,
    folder_id: str | None = None,
) -> GenerationRequest:
    """Validate everything against the model's abilities and return a request; with no seed, pick
    one so the result is reproducible (on a model with seeds). ``model_uri``: a catalogue name or
    a full URI (see :func:`~.models.resolve`)."""
    messages = normalize_messages(prompt)
    if model_uri is not None and not isinstance(model_uri, str):
        raise RequestValidationError("model", model_uri, "must be a model name or URI")
    if model_uri is not None and model_uri.strip().startswith("art://"):
        validate_model_uri(model_uri)
    if folder_id is not None and "art://" not in (model_uri or ""):
        validate_folder_id(folder_id)
    model = resolve(model_uri, folder_id)
    spec = model.spec
    given = seed is not None
    if given and not spec.seeds:
        raise RequestValidationError(
            "seed", seed, f"{spec.name} takes no seed (every request is a new picture): leave the seed out; "
            "each request is another sample (the magic's --count N asks for N)")
    chosen = (validate_seed(seed) if seed is not None else random_seed()) if spec.seeds else None
    ratio = AspectRatio.parse(aspect)
    refusal = spec.check_ratio(ratio.width, ratio.height)
    if refusal:
        raise RequestValidationError("aspect", str(ratio), refusal)
    mime = validate_mime(mime_type)
    if mime not in spec.mime_types:
        raise RequestValidationError("mime_type", mime, f"{spec.name} makes {' or '.join(spec.mime_types)} only")
    if not spec.messages and len(messages) > 1:
        combined = combine([m.text for m in messages])
        if len(combined) > spec.prompt_limit:
            raise RequestValidationError(
                "prompt", combined, f"{spec.name} takes one prompt: the messages are combined into one, which "
                f"must have at most {spec.prompt_limit} characters; it has {len(combined)}")
    return GenerationRequest(messages, chosen, ratio, mime, model.uri, given and spec.seeds, spec.api)


def _format_weight(weight: float) -> str:
    return str(int(weight)) if float(weight).is_integer() else repr(float(weight))
