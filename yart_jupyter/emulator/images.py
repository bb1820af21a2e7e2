"""Synthetic but pleasant pictures: a landscape drawn from a hash of the request.

The same (messages, seed, aspect) always gives the same bytes; every picture is marked
"EMULATED" so nobody mistakes it for a real YandexART result.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import json
import math
import random
from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from ..core.request import AspectRatio


def request_digest(messages: Sequence[dict[str, Any]], seed: int, width: int, height: int) -> bytes:
    """A stable digest of what determines the picture."""
    canonical = json.dumps(
        {"m": [[str(m.get("text", "")), float(m.get("weight", 1))] for m in messages], "s": seed,
         "a": [width, height]},
        sort_keys=True, ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).digest()


def _palette(rng: random.Random) -> list[tuple[int, int, int]]:
    base = rng.random()
    colours = []
    for i in range(6):
        hue = (base + i * rng.uniform(0.04, 0.12)) % 1.0
        light = 0.78 - i * 0.11
        sat = 0.35 + rng.random() * 0.4
        r, g, b = colorsys.hls_to_rgb(hue, max(0.08, light), sat)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return colours


def render(
    messages: Sequence[dict[str, Any]],
    seed: int,
    aspect: AspectRatio,
    mime_type: str = "image/jpeg",
    pad_to: int = 0,
    size: tuple[int, int] | None = None,
    label: str | None = None,
) -> bytes:
    """Draw the picture for a request and encode it; ``pad_to`` grows JPEGs to a realistic size,
    ``size`` fixes the pixel size (a model with fixed sizes), ``label`` replaces the seed line.
    The same request gives the same bytes, so the latest pictures are kept (drawing one takes ~25 ms)."""
    canonical = json.dumps([[str(m.get("text", "")), float(m.get("weight", 1))] for m in messages], ensure_ascii=False)
    return _drawn(canonical, seed, aspect, mime_type, pad_to, size, label)


@functools.lru_cache(maxsize=128)
def _drawn(canonical: str, seed: int, aspect: AspectRatio, mime_type: str, pad_to: int,
           size: tuple[int, int] | None, label: str | None) -> bytes:
    messages = [{"text": text, "weight": weight} for text, weight in json.loads(canonical)]
    width, height = size or aspect.pixel_size()
    rng = random.Random(request_digest(messages, seed, aspect.width, aspect.height))
    colours = _palette(rng)
    sky_top, sky_bottom = colours[0], colours[1]
    image = _sky(width, height, sky_top, sky_bottom)
    draw = ImageDraw.Draw(image)
    sun_r = int(min(width, height) * rng.uniform(0.06, 0.12))
    sun_x, sun_y = int(width * rng.uniform(0.15, 0.85)), int(height * rng.uniform(0.15, 0.4))
    for k in range(6, 0, -1):
        glow = tuple(min(255, c + 30 + 10 * (6 - k)) for c in sky_bottom)
        r = sun_r + k * sun_r // 3
        draw.ellipse((sun_x - r, sun_y - r, sun_x + r, sun_y + r), fill=glow)
    draw.ellipse((sun_x - sun_r, sun_y - sun_r, sun_x + sun_r, sun_y + sun_r), fill=(255, 244, 214))
    layers = 4
    for layer in range(layers):
        base = height * (0.45 + 0.13 * layer)
        amplitude = height * (0.16 - 0.025 * layer)
        waves = [(rng.uniform(0.5, 3.5), rng.uniform(0, math.tau), rng.uniform(0.3, 1.0)) for _ in range(4)]
        points = [(0, height)]
        for x in range(0, width + 8, 8):
            t = x / width * math.tau
            y = base - amplitude * sum(a * math.sin(f * t + p) for f, p, a in waves) / 2
            points.append((x, int(y)))
        points.append((width, height))
        draw.polygon(points, fill=colours[2 + layer])
    font = ImageFont.load_default(size=max(14, height // 40))
    label = label or f"EMULATED · seed {seed} · {aspect}"
    prompt = str(messages[0].get("text", ""))[:80] if messages else ""
    pad = max(8, height // 80)
    box = draw.textbbox((0, 0), label, font=font)
    draw.rectangle((0, height - (box[3] - box[1]) * 2 - pad * 3, width, height), fill=(0, 0, 0))
    draw.text((pad, height - (box[3] - box[1]) * 2 - pad * 2), label, fill=(255, 255, 255), font=font)
    draw.text((pad, height - (box[3] - box[1]) - pad), prompt, fill=(200, 200, 200), font=font)
    out = io.BytesIO()
    if mime_type == "image/png":
        image.save(out, "PNG", optimize=False)
        return out.getvalue()
    image.save(out, "JPEG", quality=90)
    data = out.getvalue()
    if pad_to > len(data):
        data = _pad_jpeg(data, pad_to, rng)
    return data


def _sky(width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    """A vertical gradient from ``top`` to ``bottom``: one column worked out, then widened. The
    same pixels as blending two filled pictures through a full-size gradient, which took 12 of
    the 18 ms a 1024×1024 picture cost to draw (6 ms now)."""
    ramp = Image.linear_gradient("L").resize((1, height))  # 0 at the top, 255 at the bottom
    channels = [ramp.point(lambda m, t=t, b=b: round(t + (b - t) * m / 255))
                for t, b in zip(top, bottom, strict=True)]
    return Image.merge("RGB", channels).resize((width, height), Image.Resampling.NEAREST)


def _pad_jpeg(data: bytes, size: int, rng: random.Random) -> bytes:
    """Insert COM segments of noise after SOI so the file reaches ``size`` bytes and still decodes."""
    chunks = []
    remaining = size - len(data)
    while remaining > 4:
        n = min(65533, remaining - 4)
        chunks.append(b"\xff\xfe" + (n + 2).to_bytes(2, "big") + rng.randbytes(n))
        remaining -= n + 4
    return data[:2] + b"".join(chunks) + data[2:]
