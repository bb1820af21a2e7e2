"""The model catalogue: every YandexART model the service is known to serve, and what each can do.

One table, read by every face: which API serves a model (asynchronous operations, or the
synchronous OpenAI-compatible Images API), whether it takes a seed, weights and several messages,
which aspect ratios it accepts and how they are sent, its prompt limit, its picture types, and
what is known of its status, with a date. A model is named by its short name or its full URI;
an unknown name is allowed (new models appear), prefixed ``images:`` when the Images API serves it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .errors import TRY_WITHOUT_ACCOUNT, RequestValidationError

#: The two APIs the service generates pictures with.
Api = Literal["operations", "images"]
APIS: tuple[Api, ...] = ("operations", "images")
#: How each API is named to a person.
API_NAMES: dict[Api, str] = {"operations": "async operations", "images": "Images API (sync)"}

#: The model a request uses when none is named: the documented one (reported denied since 2026-09).
DEFAULT_MODEL = "yandex-art/latest"
#: The living model, which ``%config`` lines and messages point a denied user to.
LIVING_MODEL = "aliceai-image-art-3.0"
#: The weights note every face shows (the API definition says so since 2025-06-20).
WEIGHTS_UNSUPPORTED = "weights are documented as not supported by the service (since 2025-06)"


@dataclass(frozen=True)
class ModelSpec:
    """What one model supports, and what is known of it (``status``, with a date)."""

    name: str
    api: Api
    seeds: bool
    #: Whether weights change the picture (no known model: the API documents them as unsupported).
    weights: bool
    #: Whether several messages are sent as such (else they are combined into one prompt).
    messages: bool
    #: The most elongated ratio accepted, as N for 1:N .. N:1.
    max_elongation: float
    prompt_limit: int
    mime_types: tuple[str, ...]
    status: str
    #: The picture sizes the model snaps any ratio to (empty: the area stays about 1024×1024).
    sizes: tuple[tuple[int, int], ...] = ()
    known: bool = True

    @property
    def aspects(self) -> str:
        """The accepted ratios and how they are sent, for a person."""
        n = f"{self.max_elongation:g}"
        if self.api == "images":
            return f"1:{n} to {n}:1, sent as size WxH, snapped to {len(self.sizes)} sizes"
        return f"1:{n} to {n}:1, sent as aspectRatio"

    def check_ratio(self, width: int, height: int) -> str | None:
        """Why this model refuses the ratio ``width:height``, or None when it accepts it."""
        if max(width, height) > self.max_elongation * min(width, height) + 1e-9:
            n = f"{self.max_elongation:g}"
            return f"{self.name} takes ratios between 1:{n} and {n}:1"
        return None

    def snap(self, width: int, height: int) -> tuple[int, int] | None:
        """The size this model returns for ``width:height`` (None: no fixed sizes)."""
        if not self.sizes:
            return None
        ratio = width / height
        return min(self.sizes, key=lambda size: abs(size[0] / size[1] - ratio))


#: Sizes Alice AI ART answers with: 1344×768 (asked 16:9) and 832×1280 (asked 1024x1536) are
#: reported; the others are their mirror images and the square.
ALICE_SIZES = ((1024, 1024), (1344, 768), (768, 1344), (1280, 832), (832, 1280), (1152, 896), (896, 1152))

CATALOGUE: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("yandex-art/latest", "operations", seeds=True, weights=False, messages=True, max_elongation=4,
              prompt_limit=500, mime_types=("image/jpeg", "image/png"),
              status="reported denied since 2026-09-07 (403 Access to model … denied); the documented default"),
    ModelSpec("yandex-art-2.0", "operations", seeds=True, weights=False, messages=True, max_elongation=4,
              prompt_limit=500, mime_types=("image/jpeg", "image/png"),
              status="retired 2026-08-18 by one catalogue; operations reported to stay running >10 min (2026-09)"),
    ModelSpec(LIVING_MODEL, "images", seeds=False, weights=False, messages=False, max_elongation=2,
              prompt_limit=500, mime_types=("image/jpeg",), sizes=ALICE_SIZES,
              status="serving (Alice AI ART, reported 2026-09); no seed: every request is a new picture"),
)}
_ALIASES = {"yandex-art": "yandex-art/latest", "yandex-art/rc": "yandex-art/latest",
            "aliceai-image-art-3.0/latest": LIVING_MODEL}


@dataclass(frozen=True)
class Model:
    """A model as a request names it: its full URI and its catalogue entry."""

    uri: str
    spec: ModelSpec


def chosen(model: str | None, model_uri: str | None) -> str | None:
    """The model a call names: ``model=`` (the short spelling) or ``model_uri=`` (kept for old code)."""
    if model and model_uri and model != model_uri:
        raise RequestValidationError("model", model, f"name one model: model={model!r} or model_uri={model_uri!r}")
    return model or model_uri


def lookup(name: str) -> ModelSpec | None:
    """The catalogue entry of a short name (``yandex-art`` and ``/latest`` forms included)."""
    key = name.strip().strip("/")
    return CATALOGUE.get(_ALIASES.get(key, key))


def meant(name: str) -> str | None:
    """The catalogue model a name it does not know most likely means: a misspelling of one
    (``aliceai-image-art-3``), or the start of just one (``alice``); None otherwise."""
    from .typos import closest

    key = name.strip().lower()
    starting = [known for known in CATALOGUE if len(key) >= 3 and known.startswith(key)]
    return closest(key, CATALOGUE) or (starting[0] if len(starting) == 1 else None)


def unknown_spec(name: str, api: Api) -> ModelSpec:
    """A model the catalogue does not know: the API's usual limits, seeds only where the API has them."""
    return ModelSpec(name, api, seeds=api == "operations", weights=False, messages=api == "operations",
                     max_elongation=4, prompt_limit=500,
                     mime_types=("image/jpeg", "image/png") if api == "operations" else ("image/jpeg",),
                     status="not in the catalogue", known=False)


_URI = re.compile(r"art://([^/\s]+)/(\S+)")


def resolve(name: str | None, folder_id: str | None) -> Model:
    """The model a request names: a short name (``aliceai-image-art-3.0``), a full URI
    (``art://<folder>/yandex-art/latest``), either prefixed ``images:`` or ``operations:`` to say
    which API serves a model the catalogue does not know; None is the default model. The folder
    fills in a short name."""
    text = (name or DEFAULT_MODEL).strip()
    api: Api | None = None
    prefix, colon, rest = text.partition(":")
    if colon and prefix in APIS and not rest.startswith("//"):
        api, text = ("images" if prefix == "images" else "operations"), rest.strip()
    match = _URI.fullmatch(text)
    if match is not None:
        short = match.group(2)
        uri = text
    else:
        if not text or text.startswith("art:") or not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)?", text):
            raise RequestValidationError(
                "model_uri", name, "name a model (yandex-art/latest, aliceai-image-art-3.0; %yandexart models lists "
                "them) or give its URI art://<folder>/<model>")
        if not folder_id:
            raise RequestValidationError(
                "folder_id", folder_id,
                f"the model {text} is named art://<folder>/{text}, with the id of the folder the credentials "
                f"belong to: set YC_FOLDER_ID (folder_id= in code) or give the full URI; to try without an "
                f"account, {TRY_WITHOUT_ACCOUNT}", missing=True)
        short = text
        uri = f"art://{folder_id}/{text}"
    spec = lookup(short)
    if spec is None or (api is not None and api != spec.api):
        spec = unknown_spec(short, api or (spec.api if spec else "operations"))
    return Model(uri, spec)


def short_name(text: str) -> str:
    """The model's name in ``art://<folder>/<name>``; any other text as it is."""
    match = _URI.fullmatch(text)
    return match.group(2) if match else text


def portable_name(uri: str) -> str:
    """A recorded model as another person (another folder) names it again: a catalogue model by its
    short name, which their folder fills in; any other by its URI."""
    name = short_name(uri)
    return name if lookup(name) is not None else uri


def spec_for_uri(uri: str | None, api: Api | None = None) -> ModelSpec:
    """The catalogue entry of a stored model URI (a record read back), or the API's usual one."""
    match = _URI.fullmatch(uri or "")
    spec = lookup(match.group(2)) if match else None
    if spec is not None and (api is None or api == spec.api):
        return spec
    return unknown_spec(match.group(2) if match else (uri or "?"), api or "operations")


def combine(texts: list[str]) -> str:
    """Several messages as the one prompt a single-prompt model takes: their texts joined by ``"; "``
    in the order given (weights cannot be sent, so they are dropped)."""
    return "; ".join(texts)


def table_rows() -> list[list[str]]:
    """The catalogue as a person reads it: model, API, seed, weights, aspects, limit, status."""
    rows = []
    for spec in CATALOGUE.values():
        default = " (default)" if spec.name == DEFAULT_MODEL else ""
        rows.append([spec.name + default, API_NAMES[spec.api], "yes" if spec.seeds else "no (--count N samples)",
                     "documented unsupported" + ("" if spec.messages else "; messages combined"),
                     spec.aspects, f"{spec.prompt_limit} chars", spec.status])
    return rows


TABLE_HEADER = ["model", "API", "seed", "weights", "aspect ratios", "prompt limit", "status"]


def table_markdown() -> str:
    """:func:`table_rows` as a Markdown table (the docs' Models page is filled from it)."""
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table_rows()]
    return "\n".join(lines)


def table_text() -> str:
    """:func:`table_rows` as aligned plain text (the ``yart models`` output)."""
    rows = [TABLE_HEADER, *table_rows()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADER) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
             for row in rows]
    lines.append("")
    lines.append(f"Switch: %config YandexArt.model_uri = \"{LIVING_MODEL}\" (or --model {LIVING_MODEL}); "
                 "a model not listed: --model images:NAME when the Images API serves it.")
    return "\n".join(lines)
