"""The recipe of a generation, written into every image file the project saves and read back.

Writing inserts metadata segments (JPEG APP1) or chunks (PNG) next to the service's bytes and
never touches the compressed picture: the JPEG scan data and the PNG image data stay identical.
The recipe goes where common tools look: an XMP packet (JPEG APP1 ``http://ns.adobe.com/xap/1.0/``,
PNG iTXt ``XML:com.adobe.xmp``) under this project's namespace, and one human-readable line
(EXIF UserComment in JPEG, a ``parameters`` tEXt chunk in PNG). Reading is bounded in time and
memory and refuses DTDs and entities, so a hostile file costs nothing.
"""

from __future__ import annotations

import html
import json
import re
import struct
import zlib
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from .._version import __version__
from .errors import YandexArtError
from .models import portable_name

NAMESPACE = "https://yart-jupyter.github.io/ns/recipe/1.0/"
XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The most of a file that is read looking for a recipe, and the largest packet accepted.
READ_LIMIT = 8 * 1024 * 1024
PACKET_LIMIT = 256 * 1024


class ProvenanceError(YandexArtError, ValueError):
    """A file has no readable recipe (not an image, none written, damaged, or hostile)."""


class Recorded(Protocol):
    """What a recipe is made from: a GeneratedImage, or the store's record of a generation (one that
    made no picture too), as far as provenance is concerned."""

    @property
    def messages(self) -> Any: ...
    @property
    def seed(self) -> int | None: ...
    @property
    def aspect(self) -> Any: ...
    @property
    def mime_type(self) -> str | None: ...
    @property
    def model_uri(self) -> str | None: ...
    @property
    def model_version(self) -> str | None: ...
    @property
    def operation_id(self) -> str: ...
    @property
    def submitted_at(self) -> datetime | None: ...
    @property
    def done_at(self) -> datetime | None: ...
    @property
    def revised_prompt(self) -> str | None: ...


def recipe(image: Recorded) -> dict[str, Any]:
    """Everything needed to see how a picture was made and to make it again."""

    def utc(moment: datetime | None) -> str | None:
        return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if moment else None

    return {
        "messages": [{"text": m.text, "weight": m.weight} for m in image.messages],
        "seed": image.seed,
        "aspect": str(image.aspect) if image.aspect is not None else None,
        "mime_type": image.mime_type,
        "model_uri": image.model_uri,
        "model_version": image.model_version,
        "operation_id": image.operation_id,
        "submitted_at": utc(image.submitted_at),
        "finished_at": utc(image.done_at),
        "generator": f"yart_jupyter {__version__}",
        **({"no_seed": True} if image.seed is None and image.operation_id.startswith("img-") else {}),
        **({"revised_prompt": image.revised_prompt} if image.revised_prompt else {}),
    }


def summary(data: Mapping[str, Any]) -> str:
    """One line in the style image tools already show: ``prompt, Seed: 1863, Aspect: 2:1, ...``."""
    prompt = " | ".join(
        m["text"] + (f" (weight {m['weight']:g})" if m.get("weight", 1) != 1 else "") for m in data["messages"]
    )
    seed = "none (the model takes no seed)" if data.get("seed") is None else data["seed"]
    parts = [prompt, f"Seed: {seed}", f"Aspect: {data['aspect']}", f"Model: {data['model_uri']}"]
    if data.get("model_version"):
        parts.append(f"Model version: {data['model_version']}")
    parts += [f"Operation: {data['operation_id']}", f"Generator: {data['generator']}"]
    return ", ".join(parts)


def cell_text(data: Mapping[str, Any]) -> str:
    """The ``%%yandexart`` cell that makes this picture again: on the same model whatever the reader's
    default (a catalogue model by its short name, so the reader's folder fills it in)."""
    seed = f"--seed {data['seed']} " if data.get("seed") is not None else ""
    model = f" --model {portable_name(data['model_uri'])}" if data.get("model_uri") else ""
    lines = [f"%%yandexart {seed}--aspect {data['aspect']}{model}"]
    if data.get("mime_type") and data["mime_type"] != "image/jpeg":
        lines[0] += f" --mime {data['mime_type']}"
    for index, message in enumerate(data["messages"]):
        weight = message.get("weight", 1)
        if index or weight != 1:
            lines.append("---" + (f" {weight:g}" if weight != 1 else ""))
        lines.append(message["text"].replace("{", "{{").replace("}", "}}"))
    return "\n".join(lines)


def _xmp(data: Mapping[str, Any]) -> bytes:
    attrs = "".join(
        f' yart:{name}="{html.escape(str(data[key]), quote=True)}"'
        for name, key in (("seed", "seed"), ("aspect", "aspect"), ("operationId", "operation_id"),
                          ("modelVersion", "model_version"), ("modelUri", "model_uri"))
        if data.get(key) is not None
    )
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:yart="{NAMESPACE}" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        f"{attrs}>"
        f"<yart:recipe>{html.escape(json.dumps(data, ensure_ascii=False, sort_keys=True), quote=False)}</yart:recipe>"
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{html.escape(summary(data), quote=False)}'
        "</rdf:li></rdf:Alt></dc:description>"
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )
    return packet.encode("utf-8")


def _exif_user_comment(text: str) -> bytes:
    """A minimal little-endian EXIF block: IFD0 pointing at an Exif IFD with one UserComment."""
    comment = b"UNICODE\x00" + text.encode("utf-16-le")
    ifd0 = 8
    exif_ifd = ifd0 + 2 + 12 + 4
    data_at = exif_ifd + 2 + 12 + 4
    tiff = b"II*\x00" + struct.pack("<I", ifd0)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x8769, 4, 1, exif_ifd) + struct.pack("<I", 0)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x9286, 7, len(comment), data_at) + struct.pack("<I", 0)
    return b"Exif\x00\x00" + tiff + comment


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) + 2 > 0xFFFF:
        raise ProvenanceError("the recipe is too long for a JPEG metadata segment")
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def embed(data: bytes, image_recipe: Mapping[str, Any]) -> bytes:
    """``data`` with the recipe inserted; the compressed picture is left byte for byte as it was."""
    line = summary(image_recipe)
    if data[:8] == PNG_SIGNATURE:
        end_of_ihdr = 8 + 8 + struct.unpack(">I", data[8:12])[0] + 4
        extra = _chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + _xmp(image_recipe))
        extra += _chunk(b"tEXt", b"parameters\x00" + line.encode("latin-1", "replace"))
        return data[:end_of_ihdr] + extra + data[end_of_ihdr:]
    if data[:2] != b"\xff\xd8":
        raise ProvenanceError("only JPEG and PNG images carry a recipe")
    at = 2
    if data[2:4] == b"\xff\xe0":  # keep JFIF first, as readers expect
        at = 4 + struct.unpack(">H", data[4:6])[0]
    extra = _segment(0xE1, _exif_user_comment(line)) + _segment(0xE1, XMP_ID + _xmp(image_recipe))
    return data[:at] + extra + data[at:]


def _packets(data: bytes) -> list[bytes]:
    """The XMP packets of a JPEG or PNG (bounded: segments and chunks are walked, not searched)."""
    found: list[bytes] = []
    if data[:8] == PNG_SIGNATURE:
        at = 8
        while at + 12 <= len(data):
            (length,) = struct.unpack(">I", data[at:at + 4])
            kind = data[at + 4:at + 8]
            body = data[at + 8:at + 8 + length]
            if len(body) < length:
                raise ProvenanceError("the PNG is truncated")
            if kind == b"iTXt" and body.startswith(b"XML:com.adobe.xmp\x00"):
                if length > PACKET_LIMIT:
                    raise ProvenanceError(f"its XMP packet is {length:,} bytes, more than is ever written; not read")
                found.append(body[len(b"XML:com.adobe.xmp\x00") + 4:])
            if kind in (b"IDAT", b"IEND") and found:
                break
            at += 12 + length
        return found
    if data[:2] != b"\xff\xd8":
        raise ProvenanceError("it is not a JPEG or PNG image")
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker in (0xDA, 0xD9):  # start of scan: no metadata after it
            break
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        if marker == 0xE1 and data[at + 4:at + 4 + len(XMP_ID)] == XMP_ID:
            found.append(data[at + 4 + len(XMP_ID):at + 2 + length])
        at += 2 + length
    return found


_RECIPE = re.compile(r"<yart:recipe>(.*?)</yart:recipe>", re.S)


def read_recipe(data: bytes) -> dict[str, Any]:
    """The recipe in an image's bytes; a :class:`ProvenanceError` saying why there is none."""
    for packet in _packets(data):
        text = packet.decode("utf-8", "replace")
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            raise ProvenanceError("its XMP packet declares a DTD or entities; refused unread")
        if NAMESPACE not in text:
            continue
        match = _RECIPE.search(text)
        try:
            value = json.loads(html.unescape(match.group(1))) if match else None
        except ValueError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("messages"), list) or "seed" not in value:
            raise ProvenanceError("its yart_jupyter recipe is damaged")
        return value
    raise ProvenanceError("it has no yart_jupyter recipe (it was not saved by yart_jupyter, or the recipe was removed)")


def info(path: str | Path) -> dict[str, Any] | list[dict[str, Any]]:
    """The recipe of an image file, or every recipe in a notebook (``.ipynb``) or exported HTML."""
    file = Path(path).expanduser()
    try:
        with file.open("rb") as handle:
            data = handle.read(READ_LIMIT)
    except OSError as exc:
        raise ProvenanceError(f"Cannot read {file}: {exc.strerror or exc}") from None
    if file.suffix.lower() in (".ipynb", ".html", ".htm"):
        return _document_recipes(file, data)
    try:
        return read_recipe(data)
    except ProvenanceError as exc:
        raise ProvenanceError(f"{file}: {exc.message}") from None


#: A figure's recipe in exported HTML (nbconvert rewrites the attribute with either quote).
_ATTRIBUTE = re.compile(f"data-yart-recipe=(?:\"([^\"]{{1,{PACKET_LIMIT}}})\"|'([^']{{1,{PACKET_LIMIT}}})')")


def _document_recipes(file: Path, data: bytes) -> list[dict[str, Any]]:
    """Recipes a notebook keeps in its outputs' metadata, or an exported page in its figures."""
    recipes: list[dict[str, Any]] = []
    if file.suffix.lower() == ".ipynb":
        try:
            notebook = json.loads(data)
            outputs = [o for c in notebook.get("cells", []) for o in c.get("outputs", [])]
            for output in outputs:
                recipes.extend(output.get("metadata", {}).get("yart_jupyter", {}).get("recipes", []))
        except (ValueError, AttributeError, TypeError):
            raise ProvenanceError(f"{file}: is not a readable notebook") from None
    else:
        for match in _ATTRIBUTE.finditer(data.decode("utf-8", "replace")):
            try:
                recipes.append(json.loads(html.unescape(match.group(1) or match.group(2))))
            except ValueError:
                continue
    if not recipes:
        raise ProvenanceError(f"{file}: has no yart_jupyter recipe")
    return recipes
