"""What the emulator accepts in a start request: the checks the real service makes, with its messages."""

from __future__ import annotations

import random
import re
from typing import Any

from ..core.models import lookup
from ..core.request import MAX_SEED, MAX_TEXT, AspectRatio
from .config import EmulatorConfig
from .shapes import MODERATION_MESSAGE, RUSSIAN_MODERATION, ApiError, int_field


def parse_start(
    body: Any, folder_header: str | None, config: EmulatorConfig, rng: random.Random
) -> tuple[list[dict[str, Any]], int, AspectRatio, str]:
    """(messages, seed, aspect, mime type) of a valid body; else the service's error."""
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    uri = body.get("modelUri")
    match = re.fullmatch(r"art://([^/]+)/(yandex-art(?:/latest|/rc)?|yandex-art-2\.0(?:/latest)?)", uri) \
        if isinstance(uri, str) else None
    if not isinstance(uri, str) or not uri.startswith("art://"):
        raise ApiError(400, f"Invalid model uri: {uri!r}")
    if match is None or match.group(1) == "yandex-art" or is_denied(model_name(match.group(2)), config):
        raise ApiError(403, f"Access to model {uri} denied")
    folder = match.group(1)
    if folder not in config.folders or (folder_header and folder_header not in config.folders):
        raise ApiError(403, f"Permission to [resource-manager.folder {folder}] denied")
    options = body.get("generationOptions") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "generationOptions must be an object")
    mime = options.get("mimeType") or "image/jpeg"
    if mime not in ("image/jpeg", "image/png"):
        raise ApiError(400, f"Unsupported mime type: {mime}")
    seed = int_field(options.get("seed", 0), "seed")
    if not 0 <= seed <= MAX_SEED:
        raise ApiError(400, f"seed must be in [0, {MAX_SEED}]")
    if seed == 0:
        seed = rng.randrange(1, MAX_SEED)
    ratio = options.get("aspectRatio") or {}
    if not isinstance(ratio, dict):
        raise ApiError(400, "aspectRatio must be an object")
    width = int_field(ratio.get("widthRatio", 1), "widthRatio")
    height = int_field(ratio.get("heightRatio", 1), "heightRatio")
    try:
        aspect = AspectRatio.parse((width, height))
    except ValueError:
        raise ApiError(400, f"Unsupported aspect ratio {width}:{height}") from None
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must contain at least one message")
    cleaned = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            raise ApiError(400, "each message needs a text")
        text = message["text"]
        if not text.strip():
            raise ApiError(400, "message text must not be empty")
        if len(text) > MAX_TEXT:
            raise ApiError(400, f"message text is too long: {len(text)} > {MAX_TEXT} characters")
        try:
            weight = float(message.get("weight", 1))
        except (TypeError, ValueError):
            raise ApiError(400, "weight must be a number") from None
        if not weight > 0:
            raise ApiError(400, "negative prompts are currently not supported")
        lowered = text.lower()
        if any(word in lowered for word in config.moderation_words):
            raise ApiError(400, RUSSIAN_MODERATION if config.russian_moderation else MODERATION_MESSAGE)
        cleaned.append({"text": text, "weight": weight})
    return cleaned, seed, aspect, mime


def model_name(path: str) -> str:
    """``yandex-art/latest`` and ``yandex-art`` name one model; so do ``X/latest`` and ``X``."""
    name = path.removesuffix("/latest").removesuffix("/rc")
    return "yandex-art/latest" if name == "yandex-art" else name


def is_denied(name: str, config: EmulatorConfig) -> bool:
    """Whether the configured denials name this model (``yandex-art`` and ``yandex-art/latest`` alike)."""
    return name in {model_name(denied) for denied in config.denied_models}


def parse_images(
    body: Any, folder_header: str | None, config: EmulatorConfig
) -> tuple[str, str, tuple[int, int], AspectRatio]:
    """(model, prompt, pixel size, asked ratio) of a valid Images API body; else the service's error."""
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    uri = body.get("model")
    match = re.fullmatch(r"art://([^/]+)/(.+)", uri) if isinstance(uri, str) else None
    if match is None:
        raise ApiError(400, f"Invalid model uri: {uri!r}")
    folder, name = match.group(1), model_name(match.group(2))
    if is_denied(name, config):
        raise ApiError(403, f"Access to model {uri} denied")
    if name not in config.images_models:
        raise ApiError(404, f"Model {uri} not found")
    if folder not in config.folders:
        raise ApiError(403, f"Permission to [resource-manager.folder {folder}] denied")
    if folder_header and folder_header != folder:
        raise ApiError(400, f"Specified folder ID '{folder_header}' does not match with service account folder")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(400, "prompt must be a non-empty string")
    if len(prompt) > MAX_TEXT:
        raise ApiError(400, f"Prompt positive size {len(prompt)} exceeds limit ({MAX_TEXT})")
    size = body.get("size", "1x1")
    sized = re.fullmatch(r"(\d+)x(\d+)", size) if isinstance(size, str) else None
    if sized is None or int(sized.group(1)) < 1 or int(sized.group(2)) < 1:
        raise ApiError(400, f"size must be two positive integers separated by x, not {size!r}")
    width, height = int(sized.group(1)), int(sized.group(2))
    if any(word in prompt.lower() for word in config.moderation_words):
        raise ApiError(400, RUSSIAN_MODERATION)
    sizes = lookup(name)
    snapped = sizes.snap(width, height) if sizes is not None else None
    ratio = AspectRatio(width, height) if max(width, height) <= 1000 else AspectRatio(1, 1)
    return name, prompt, snapped or ratio.pixel_size(), ratio
