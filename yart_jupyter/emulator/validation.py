"""What the emulator accepts in a start request: the checks the real service makes, with its messages."""

from __future__ import annotations

import random
import re
from typing import Any

from ..request import MAX_SEED, MAX_TEXT, AspectRatio
from .config import EmulatorConfig
from .shapes import MODERATION_MESSAGE, ApiError, int_field


def parse_start(
    body: Any, folder_header: str | None, config: EmulatorConfig, rng: random.Random
) -> tuple[list[dict[str, Any]], int, AspectRatio, str]:
    """(messages, seed, aspect, mime type) of a valid body; else the service's error."""
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    uri = body.get("modelUri")
    match = re.fullmatch(r"art://([^/]+)/yandex-art(?:/latest|/rc)?", uri) if isinstance(uri, str) else None
    if not isinstance(uri, str) or not uri.startswith("art://"):
        raise ApiError(400, f"Invalid model uri: {uri!r}")
    if match is None or match.group(1) == "yandex-art":
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
            raise ApiError(400, MODERATION_MESSAGE)
        cleaned.append({"text": text, "weight": weight})
    return cleaned, seed, aspect, mime
