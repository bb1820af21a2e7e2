"""GeneratedImage: saving safely, the caption, and the rich display bundle."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from yart_jupyter.emulator.images import render
from yart_jupyter.image import GeneratedImage, image_size
from yart_jupyter.request import AspectRatio, Message


def make_image(mime: str = "image/jpeg") -> GeneratedImage:
    data = render([{"text": "t", "weight": 1}], 5, AspectRatio(16, 9), mime)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return GeneratedImage(data, mime, 5, AspectRatio(16, 9), (Message("a red fox"),), "opid0000000000000001",
                          "", "art://f/yandex-art/latest", start, start + timedelta(seconds=12.3))


def test_caption_has_the_essentials() -> None:
    caption = make_image().caption()
    for part in ("seed 5", "aspect 16:9", "1368×768", "12.3 s", "op opid0000000000000001"):
        assert part in caption


def test_save_never_overwrites_silently(tmp_path: Path) -> None:
    image = make_image()
    path = image.save(tmp_path / "sub" / "fox.jpg")
    assert path.read_bytes() == image.image_bytes
    with pytest.raises(FileExistsError):
        image.save(path)
    image.save(path, overwrite=True)
    assert image.save(tmp_path).name == "yandexart-5.jpg"
    assert image.save(tmp_path / "noext").suffix == ".jpg"
    assert not list(tmp_path.rglob("*.part"))


def test_mimebundle_is_a_native_image() -> None:
    for mime in ("image/jpeg", "image/png"):
        image = make_image(mime)
        data, meta = image._repr_mimebundle_()
        assert base64.b64decode(data[mime]) == image.image_bytes
        assert "seed 5" in data["text/plain"]
        assert meta[mime]["width"] == image_size(image.image_bytes)[0] // 2  # type: ignore[index]


def test_repr_is_short_and_informative() -> None:
    text = repr(make_image())
    assert "seed=5" in text and "opid0000000000000001" in text and len(text) < 300
